package controller_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudnative-pg/cnpg-i/pkg/reconciler"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/cnpgitest"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/operator"
	"github.com/bcloud-dev/bcloud/internal/controller"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// TestSidecarRBAC creates the per-Cluster Role through ReconcilerHooks.Pre
// on a real API server and checks, as the Cluster's ServiceAccount, that
// exactly the named ObjectStores and Secrets are readable; then moves a
// credential to another Secret and lets the ObjectStore controller update
// the Role.
func TestSidecarRBAC(t *testing.T) {
	cfg, admin := testenv.EnvTest(t)
	ctx := tctx(t)
	ns := fmt.Sprintf("rbac-%d", time.Now().UnixNano()%1e9)
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	storeA := cnpgitest.S3ObjectStore(ns, "store-a", "s3://bucket/a", "https://s3.local", "creds-a")
	storeA.Spec.Configuration.EndpointCA = cnpgitest.Ref("ca-a", "ca.crt")
	storeB := &apiv1.ObjectStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "store-b"},
		Spec: apiv1.ObjectStoreSpec{Configuration: apiv1.BarmanObjectStoreConfiguration{
			DestinationPath: "https://acct.blob.core.windows.net/c/b",
			BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{
				ConnectionString: cnpgitest.Ref("creds-b", "AZURE_CONNECTION_STRING")}},
		}}}
	storeC := cnpgitest.S3ObjectStore(ns, "store-c", "s3://bucket/c", "", "creds-c")
	for _, o := range []client.Object{storeA, storeB, storeC,
		cnpgitest.Secret(ns, "creds-a", map[string]string{"ACCESS_KEY_ID": "a", "ACCESS_SECRET_KEY": "b"}),
		cnpgitest.Secret(ns, "creds-b", map[string]string{"AZURE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5"}),
		cnpgitest.Secret(ns, "creds-c", map[string]string{"ACCESS_KEY_ID": "c", "ACCESS_SECRET_KEY": "c"}),
		cnpgitest.Secret(ns, "ca-a", map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----"}),
		cnpgitest.Secret(ns, "unrelated", map[string]string{"password": "x"}),
	} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}

	srv := &cnpgi.Server{Identity: &cnpgi.Identity{Services: operator.Services},
		Register: operator.Handlers(admin, "img"), PluginPath: t.TempDir()}
	cnpgitest.Serve(t, srv)
	p, err := cnpgitest.Load(ctx, cnpgitest.DialUnix(t, srv.PluginPath+"/"+cnpgi.PluginName))
	if err != nil {
		t.Fatal(err)
	}
	cluster := cnpgitest.Cluster{Name: "pg", Namespace: ns, UID: "6f1c2a4e-0000-4000-8000-000000000001",
		Archive: map[string]string{"barmanObjectName": "store-a"}, Recovery: map[string]string{"barmanObjectName": "store-b"}}
	res, err := reconciler.NewReconcilerHooksClient(p.Conn).Pre(ctx, &reconciler.ReconcilerHooksRequest{
		ClusterDefinition: cluster.JSON(t), ResourceDefinition: cluster.JSON(t)})
	if err != nil || res.GetBehavior() != reconciler.ReconcilerHooksResult_BEHAVIOR_CONTINUE {
		t.Fatalf("Pre: %v %v", res, err)
	}

	sa := impersonate(t, cfg, ns, "pg")
	canGet := func(obj client.Object, name string) bool {
		t.Helper()
		err := sa.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj)
		if err != nil && !apierrors.IsForbidden(err) {
			t.Fatalf("get %s: %v", name, err)
		}
		return err == nil
	}
	for name, want := range map[string]bool{"creds-a": true, "creds-b": true, "creds-c": false, "ca-a": false, "unrelated": false} {
		if got := canGet(&corev1.Secret{}, name); got != want {
			t.Errorf("ServiceAccount reads Secret %s: %v, want %v", name, got, want)
		}
	}
	for name, want := range map[string]bool{"store-a": true, "store-b": true, "store-c": false} {
		if got := canGet(&apiv1.ObjectStore{}, name); got != want {
			t.Errorf("ServiceAccount reads ObjectStore %s: %v, want %v", name, got, want)
		}
	}
	if err := sa.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)); !apierrors.IsForbidden(err) {
		t.Errorf("ServiceAccount lists all Secrets: %v", err)
	}
	// The sidecar updates the recovery window of its stores only.
	var a, c apiv1.ObjectStore
	_ = admin.Get(ctx, client.ObjectKeyFromObject(storeA), &a)
	a.Status.ServerRecoveryWindow = map[string]apiv1.RecoveryWindow{"pg": {LastSuccessfulBackupTime: &metav1.Time{Time: time.Now()}}}
	if err := sa.Status().Update(ctx, &a); err != nil {
		t.Errorf("status update of store-a: %v", err)
	}
	_ = admin.Get(ctx, client.ObjectKeyFromObject(storeC), &c)
	c.Status.ServerRecoveryWindow = a.Status.ServerRecoveryWindow
	if err := sa.Status().Update(ctx, &c); !apierrors.IsForbidden(err) {
		t.Errorf("status update of store-c: %v", err)
	}
	// What the sidecar does with these rights: resolve both stores, with
	// the endpoint CA where the injected projected volume puts it.
	certDir := t.TempDir()
	ca := cnpgitest.NewKeyPair(t, t.TempDir(), "s3.local", x509.ExtKeyUsageServerAuth)
	if err := os.MkdirAll(filepath.Join(certDir, "store-a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certDir, "store-a", cnpgi.CertificateFile), ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	stores := &cnpgi.Stores{Client: sa, CertDir: certDir}
	for _, name := range []string{"store-a", "store-b"} {
		st, err := stores.Get(ctx, ns, name)
		if err != nil {
			t.Errorf("sidecar resolves %s: %v", name, err)
			continue
		}
		stores.Release(st)
	}
	stores.Close()

	t.Run("credential rotation", func(t *testing.T) {
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}})
		if err != nil {
			t.Fatal(err)
		}
		rec := &controller.ObjectStoreReconciler{Client: mgr.GetClient(), Reader: mgr.GetAPIReader()}
		if err := rec.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
		mctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- mgr.Start(mctx) }()
		t.Cleanup(func() { cancel(); <-done })

		if err := admin.Create(ctx, cnpgitest.Secret(ns, "creds-rotated", map[string]string{"KEY": "new"})); err != nil {
			t.Fatal(err)
		}
		var cur apiv1.ObjectStore
		if err := admin.Get(ctx, client.ObjectKeyFromObject(storeA), &cur); err != nil {
			t.Fatal(err)
		}
		cur.Spec.Configuration.AWS.AccessKeyIDReference = cnpgitest.Ref("creds-rotated", "KEY")
		cur.Spec.Configuration.AWS.SecretAccessKeyReference = cnpgitest.Ref("creds-rotated", "KEY")
		if err := admin.Update(ctx, &cur); err != nil {
			t.Fatal(err)
		}
		var role rbacv1.Role
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := admin.Get(ctx, types.NamespacedName{Namespace: ns, Name: "pg-barman-cloud"}, &role); err != nil {
				t.Fatal(err)
			}
			if names := secretNames(role); slices.Equal(names, []string{"creds-b", "creds-rotated"}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("role secrets %v after rotation", secretNames(role))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !canGet(&corev1.Secret{}, "creds-rotated") || canGet(&corev1.Secret{}, "creds-a") {
			t.Error("after rotation the ServiceAccount must read creds-rotated and no longer creds-a")
		}
		// Deleting a store drops its grants.
		if err := admin.Delete(ctx, &cur); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; {
			_ = admin.Get(ctx, types.NamespacedName{Namespace: ns, Name: "pg-barman-cloud"}, &role)
			if !strings.Contains(fmt.Sprint(role.Rules), "store-a") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("role still grants the deleted store: %v", role.Rules)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func secretNames(role rbacv1.Role) []string {
	for _, r := range role.Rules {
		if slices.Equal(r.Resources, []string{"secrets"}) {
			return r.ResourceNames
		}
	}
	return nil
}

// impersonate returns a client acting as a namespace's ServiceAccount.
func impersonate(t *testing.T, cfg *rest.Config, ns, sa string) client.Client {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	cl, err := client.New(c, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
