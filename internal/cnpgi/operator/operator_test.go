package operator_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/cloudnative-pg/cnpg-i/pkg/identity"
	"github.com/cloudnative-pg/cnpg-i/pkg/lifecycle"
	opb "github.com/cloudnative-pg/cnpg-i/pkg/operator"
	"github.com/cloudnative-pg/cnpg-i/pkg/reconciler"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/cnpgitest"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/operator"
)

const image = "registry.local/bcloud:1.0"

// startOperator serves the operator-side services over TCP with mutual
// TLS, as deployed, and loads the plugin as CloudNativePG does.
func startOperator(t *testing.T, c client.Client) *cnpgitest.Plugin {
	t.Helper()
	dir := t.TempDir()
	server := cnpgitest.NewKeyPair(t, dir, "barman-cloud", x509.ExtKeyUsageServerAuth)
	cl := cnpgitest.NewKeyPair(t, dir, "barman-cloud-client", x509.ExtKeyUsageClientAuth)
	srv := &cnpgi.Server{
		Identity: &cnpgi.Identity{Services: operator.Services},
		Register: operator.Handlers(c, image),
		Address:  "127.0.0.1:0", ServerCertPath: server.CertFile, ServerKeyPath: server.KeyFile, ClientCertPath: cl.CertFile,
	}
	addr := cnpgitest.Serve(t, srv).String()
	p, err := cnpgitest.Load(ctx(t), cnpgitest.DialTLS(t, addr, "barman-cloud", server.CertPEM, cl.TLS(t)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestOperatorCapabilities(t *testing.T) {
	p := startOperator(t, cnpgitest.FakeClient(t))
	for _, s := range []identity.PluginCapability_Service_Type{
		identity.PluginCapability_Service_TYPE_RECONCILER_HOOKS,
		identity.PluginCapability_Service_TYPE_LIFECYCLE_SERVICE,
		identity.PluginCapability_Service_TYPE_INSTANCE_SIDECAR_INJECTION,
	} {
		if !p.Services[s] {
			t.Errorf("service %s not advertised", s)
		}
	}
	if len(p.Services) != 3 {
		t.Errorf("services %v, want exactly upstream's three", p.Services)
	}
	got := map[string][]lifecycle.OperatorOperationType_Type{}
	for _, c := range p.Lifecycle.GetLifecycleCapabilities() {
		for _, op := range c.GetOperationTypes() {
			got[c.GetGroup()+"/"+c.GetKind()] = append(got[c.GetGroup()+"/"+c.GetKind()], op.GetType())
		}
	}
	if !slices.Equal(got["/Pod"], []lifecycle.OperatorOperationType_Type{lifecycle.OperatorOperationType_TYPE_CREATE, lifecycle.OperatorOperationType_TYPE_EVALUATE}) ||
		!slices.Equal(got["batch/Job"], []lifecycle.OperatorOperationType_Type{lifecycle.OperatorOperationType_TYPE_CREATE}) {
		t.Errorf("lifecycle capabilities %v", got)
	}
	var kinds []reconciler.ReconcilerHooksCapability_Kind
	for _, c := range p.Reconciler.GetReconcilerCapabilities() {
		kinds = append(kinds, c.GetKind())
	}
	if !slices.Equal(kinds, []reconciler.ReconcilerHooksCapability_Kind{reconciler.ReconcilerHooksCapability_KIND_CLUSTER, reconciler.ReconcilerHooksCapability_KIND_BACKUP}) {
		t.Errorf("reconciler kinds %v", kinds)
	}
	// Services not offered answer Unimplemented, never a panic.
	_, err := opb.NewOperatorClient(p.Conn).MutateCluster(ctx(t), &opb.OperatorMutateClusterRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("Operator.MutateCluster: %v", err)
	}
}

// archiving is a Cluster archiving to "store", whose ObjectStore sets
// sidecar env, resources, arguments, log level and an endpoint CA.
func archiving() (cnpgitest.Cluster, *apiv1.ObjectStore) {
	c := cnpgitest.Cluster{Name: "pg", Namespace: "db", UID: "uid-1", PullPolicy: "IfNotPresent",
		Archive: map[string]string{"barmanObjectName": "store"}}
	os := cnpgitest.S3ObjectStore("db", "store", "s3://bucket/pg", "https://minio.local", "minio")
	os.Spec.Configuration.EndpointCA = cnpgitest.Ref("minio-ca", "ca.crt")
	os.Spec.InstanceSidecarConfiguration = apiv1.InstanceSidecarConfiguration{
		Env: []corev1.EnvVar{{Name: "AWS_REQUEST_CHECKSUM_CALCULATION", Value: "when_required"},
			{Name: "PGDATA", Value: "/must/not/override"}},
		Resources:               corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}},
		AdditionalContainerArgs: []string{"--pprof-server=:6060"},
		LogLevel:                "debug",
	}
	return c, os
}

func TestLifecycleInstancePod(t *testing.T) {
	cl, os := archiving()
	p := startOperator(t, cnpgitest.FakeClient(t, os))
	cluster := cl.JSON(t)
	podJSON := cnpgitest.InstancePod(t, cl, "pg-1")

	patch, out, err := p.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_CREATE, cluster, podJSON)
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(out, &pod); err != nil {
		t.Fatal(err)
	}
	if pod.Kind != "Pod" || pod.APIVersion != "v1" {
		t.Fatalf("patch lost kind/apiVersion: %q %q", pod.Kind, pod.APIVersion)
	}
	sc := initContainer(t, pod.Spec.InitContainers, cnpgi.SidecarName)
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("sidecar is not a native sidecar (restartPolicy Always)")
	}
	if pod.Spec.InitContainers[0].Name != "bootstrap-controller" {
		t.Error("the existing init container must stay first")
	}
	if sc.Image != image || sc.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %q pull %q", sc.Image, sc.ImagePullPolicy)
	}
	wantArgs := []string{"plugin", "instance", "--pprof-server=:6060", "--log-level=debug"}
	if !slices.Equal(sc.Command, []string{operator.BinaryPath}) || !slices.Equal(sc.Args, wantArgs) {
		t.Errorf("command %v args %v, want %v", sc.Command, sc.Args, wantArgs)
	}
	if sc.StartupProbe == nil || !slices.Equal(sc.StartupProbe.Exec.Command, []string{operator.BinaryPath, "plugin", "healthcheck", "unix"}) {
		t.Errorf("startup probe %+v", sc.StartupProbe)
	}
	if q := sc.Resources.Limits[corev1.ResourceMemory]; q.String() != "128Mi" {
		t.Errorf("resources %+v", sc.Resources)
	}
	sec := sc.SecurityContext
	if sec == nil || !*sec.ReadOnlyRootFilesystem || !*sec.RunAsNonRoot || *sec.AllowPrivilegeEscalation || sec.Capabilities.Drop[0] != "ALL" {
		t.Errorf("security context %+v", sec)
	}
	env := map[string]string{}
	var names []string
	for _, e := range sc.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("env %s twice", e.Name)
		}
		env[e.Name] = e.Value
		names = append(names, e.Name)
	}
	for k, v := range map[string]string{
		"PGDATA": "/var/lib/postgresql/data/pgdata", "POD_NAME": "pg-1", "NAMESPACE": "db", "CLUSTER_NAME": "pg",
		"SPOOL_DIRECTORY": "/controller/wal-restore-spool", "CUSTOM_CNPG_GROUP": "postgresql.cnpg.io",
		"CUSTOM_CNPG_VERSION": "v1", "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required", "PGHOST": "/controller/run",
	} {
		if env[k] != v {
			t.Errorf("env %s=%q, want %q", k, env[k], v)
		}
	}
	if names[0] != "PGDATA" {
		t.Errorf("the postgres container's env must come first: %v", names)
	}
	mounts := map[string]string{}
	for _, m := range sc.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	for path, vol := range map[string]string{"/var/lib/postgresql/data": "pgdata", "/controller": "scratch-data",
		"/plugins": "plugins", "/barman-certificates": "barman-certificates"} {
		if mounts[path] != vol {
			t.Errorf("sidecar mount %s = %q, want %q", path, mounts[path], vol)
		}
	}
	pg := pod.Spec.Containers[0]
	if !slices.ContainsFunc(pg.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "plugins" && m.MountPath == "/plugins" }) {
		t.Error("postgres container does not mount /plugins")
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	if vols["plugins"].EmptyDir == nil {
		t.Error("no plugins emptyDir")
	}
	certs := vols["barman-certificates"].Projected
	if certs == nil || len(certs.Sources) != 1 || certs.Sources[0].Secret.Name != "minio-ca" ||
		certs.Sources[0].Secret.Items[0].Key != "ca.crt" || certs.Sources[0].Secret.Items[0].Path != "store/barman-ca.crt" {
		t.Errorf("certificates volume %+v", vols["barman-certificates"])
	}

	// The dry run (EVALUATE) must give the same patch, or the operator
	// sees drift and rolls the pods; and so must a Cluster with TypeMeta.
	again, _, err := p.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_EVALUATE, cluster, podJSON)
	if err != nil || !bytes.Equal(again, patch) {
		t.Fatalf("EVALUATE patch differs (%v):\n%s\n%s", err, again, patch)
	}
	typed := cl
	typed.TypeMeta = true
	if again, _, _ := p.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_EVALUATE, typed.JSON(t), podJSON); !bytes.Equal(again, patch) {
		t.Fatal("a Cluster with kind and apiVersion gives another patch")
	}
	// A pod that already has the sidecar needs no change.
	if again, _, err := p.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_EVALUATE, cluster, out); err != nil || len(again) != 0 {
		t.Fatalf("second pass patch %s (%v)", again, err)
	}
	// Removing the endpoint CA removes the certificates volume.
	os.Spec.Configuration.EndpointCA = nil
	p2 := startOperator(t, cnpgitest.FakeClient(t, os))
	_, out2, err := p2.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_EVALUATE, cluster, out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out2, []byte("barman-certificates")) {
		t.Error("certificates volume kept after endpointCA was removed")
	}
}

func initContainer(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no init container %s", name)
	return corev1.Container{}
}

func TestLifecycleRecoveryJob(t *testing.T) {
	src := cnpgitest.S3ObjectStore("db", "origin-store", "s3://bucket/old", "", "minio")
	src.Spec.InstanceSidecarConfiguration.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}
	dst, _ := archiving()
	_, dstStore := archiving()
	p := startOperator(t, cnpgitest.FakeClient(t, src, dstStore))
	cl := dst
	cl.Recovery = map[string]string{"barmanObjectName": "origin-store", "serverName": "old"}
	cluster := cl.JSON(t)

	for _, role := range []string{"full-recovery", "snapshot-recovery"} {
		patch, out, err := p.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_CREATE, cluster, cnpgitest.RecoveryJob(t, cl, role))
		if err != nil || len(patch) == 0 {
			t.Fatalf("%s: patch %q, %v", role, patch, err)
		}
		var job batchv1.Job
		if err := json.Unmarshal(out, &job); err != nil {
			t.Fatal(err)
		}
		spec := job.Spec.Template.Spec
		sc := initContainer(t, spec.InitContainers, cnpgi.SidecarName)
		if !slices.Equal(sc.Args, []string{"plugin", "restore"}) {
			t.Errorf("%s args %v", role, sc.Args)
		}
		if q := sc.Resources.Requests[corev1.ResourceCPU]; q.String() != "250m" {
			t.Errorf("%s: resources must come from the recovery store: %+v", role, sc.Resources)
		}
		if !slices.ContainsFunc(spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/plugins" }) {
			t.Errorf("%s: main container %s lacks /plugins", role, spec.Containers[0].Name)
		}
	}
	// Other jobs (initdb, major upgrade...) are left alone.
	if patch, _, err := p.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_CREATE, cluster, cnpgitest.RecoveryJob(t, cl, "initdb")); err != nil || len(patch) != 0 {
		t.Errorf("initdb job patched: %s %v", patch, err)
	}
	// A Cluster not recovering through this plugin: no change.
	if patch, _, err := p.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_CREATE, dst.JSON(t), cnpgitest.RecoveryJob(t, dst, "full-recovery")); err != nil || len(patch) != 0 {
		t.Errorf("job of a non-recovering cluster patched: %s %v", patch, err)
	}
}

func TestLifecycleSkips(t *testing.T) {
	src := cnpgitest.S3ObjectStore("db", "origin-store", "s3://bucket/old", "", "minio")
	p := startOperator(t, cnpgitest.FakeClient(t, src))
	none := cnpgitest.Cluster{Name: "plain", Namespace: "db"}
	if patch, _, err := p.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_CREATE, none.JSON(t), cnpgitest.InstancePod(t, none, "plain-1")); err != nil || len(patch) != 0 {
		t.Errorf("cluster without the plugin: %s %v", patch, err)
	}
	// Recovery-only: the instances need no sidecar.
	rec := cnpgitest.Cluster{Name: "rec", Namespace: "db", Recovery: map[string]string{"barmanObjectName": "origin-store"}}
	if patch, _, err := p.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_CREATE, rec.JSON(t), cnpgitest.InstancePod(t, rec, "rec-1")); err != nil || len(patch) != 0 {
		t.Errorf("recovery-only cluster pod: %s %v", patch, err)
	}
	// A missing ObjectStore fails the hook (the operator retries).
	missing := cnpgitest.Cluster{Name: "m", Namespace: "db", Archive: map[string]string{"barmanObjectName": "nope"}}
	if _, _, err := p.Hook(ctx(t), lifecycle.OperatorOperationType_TYPE_CREATE, missing.JSON(t), cnpgitest.InstancePod(t, missing, "m-1")); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("missing ObjectStore: %v", err)
	}
}
