package operator_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cloudnative-pg/cnpg-i/pkg/lifecycle"
	"github.com/cloudnative-pg/cnpg-i/pkg/reconciler"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/cnpgitest"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/operator"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// TestStart runs the operator-side process as deployed (controller
// manager, ObjectStore controller, gRPC on TCP with mutual TLS) against a
// real API server, and drives it as CloudNativePG does.
func TestStart(t *testing.T) {
	cfg, admin := testenv.EnvTest(t)
	c := ctx(t)
	ns := fmt.Sprintf("op-%d", time.Now().UnixNano()%1e9)
	store := cnpgitest.S3ObjectStore(ns, "store", "s3://bucket/pg", "", "creds")
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, store,
		cnpgitest.Secret(ns, "creds", map[string]string{"ACCESS_KEY_ID": "a", "ACCESS_SECRET_KEY": "b"}),
		cnpgitest.Secret(ns, "creds-2", map[string]string{"ACCESS_KEY_ID": "a", "ACCESS_SECRET_KEY": "b"}),
	} {
		if err := admin.Create(c, o); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	server := cnpgitest.NewKeyPair(t, dir, "barman-cloud", x509.ExtKeyUsageServerAuth)
	cl := cnpgitest.NewKeyPair(t, dir, "barman-cloud-client", x509.ExtKeyUsageClientAuth)
	ready := make(chan net.Addr, 1)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- operator.Start(runCtx, operator.Options{RestConfig: cfg, SidecarImage: "registry.local/bcloud:2",
			Server: cnpgi.Server{Address: "127.0.0.1:0", ServerCertPath: server.CertFile, ServerKeyPath: server.KeyFile,
				ClientCertPath: cl.CertFile, Ready: func(a net.Addr) { ready <- a }},
			HealthProbeAddress: "0"})
	}()
	t.Cleanup(func() { cancel(); <-done })
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("operator did not start")
	}
	p, err := cnpgitest.Load(c, cnpgitest.DialTLS(t, addr.String(), "barman-cloud", server.CertPEM, cl.TLS(t)))
	if err != nil {
		t.Fatal(err)
	}
	cluster := cnpgitest.Cluster{Name: "pg", Namespace: ns, UID: "0d6e3f3a-0000-4000-8000-000000000009",
		Archive: map[string]string{"barmanObjectName": "store"}}
	patch, _, err := p.Hook(c, lifecycle.OperatorOperationType_TYPE_CREATE, cluster.JSON(t), cnpgitest.InstancePod(t, cluster, "pg-1"))
	if err != nil || len(patch) == 0 {
		t.Fatalf("LifecycleHook: %s %v", patch, err)
	}
	if _, err := reconciler.NewReconcilerHooksClient(p.Conn).Pre(c, &reconciler.ReconcilerHooksRequest{
		ClusterDefinition: cluster.JSON(t), ResourceDefinition: cluster.JSON(t)}); err != nil {
		t.Fatal(err)
	}
	var cur = store.DeepCopy()
	if err := admin.Get(c, client.ObjectKeyFromObject(store), cur); err != nil {
		t.Fatal(err)
	}
	cur.Spec.Configuration.AWS.SecretAccessKeyReference = cnpgitest.Ref("creds-2", "ACCESS_SECRET_KEY")
	if err := admin.Update(c, cur); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var role rbacv1.Role
		if err := admin.Get(c, types.NamespacedName{Namespace: ns, Name: "pg-barman-cloud"}, &role); err != nil {
			t.Fatal(err)
		}
		if len(role.Rules) == 3 && slices.Equal(role.Rules[2].ResourceNames, []string{"creds", "creds-2"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ObjectStore controller did not update the role: %+v", role.Rules)
		}
	}
}
