package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// ns is the namespace of the scenario Clusters.
const ns = "e2e"

// TestE2E runs the scenarios in order on one control plane, operator and
// plugin: later scenarios use what earlier ones made (the archive, the
// backup), so a failed scenario stops the run.
func TestE2E(t *testing.T) {
	h := Start(t)
	t.Cleanup(h.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	t.Cleanup(cancel)
	if err := h.ensureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	k := h.StartKubelet(t, OperatorNamespace, ns)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubelet errors: %v\noperator log tail:\n%s", k.Errors(), h.Operator.tail(30))
		}
		t.Logf("timings:\n%s", h.Summary())
	})
	if err := h.StartPlugin(ctx, k); err != nil {
		t.Fatal(err)
	}
	s3 := testenv.VersityGW(t)
	bucket := s3.NewBucket(t)
	if err := h.createObjectStore(ctx, ns, "store", bucket, s3); err != nil {
		t.Fatal(err)
	}
	e := &env{h: h, k: k, s3: s3, bucket: bucket}
	for _, sc := range []struct {
		name string
		run  func(context.Context, *testing.T, *env)
	}{
		{"archiving", scenarioArchiving},
		{"backup", scenarioBackup},
		{"recovery window and metrics", scenarioWindowAndMetrics},
		{"credential rotation", scenarioCredentialRotation},
		{"retention", scenarioRetention},
		{"writes after backup", scenarioWritesAfterBackup},
		{"recovery to end of WAL", scenarioRecovery},
		{"recovery to target time", scenarioRecoveryTargetTime},
	} {
		begin := time.Now()
		ok := t.Run(sc.name, func(t *testing.T) { sc.run(ctx, t, e) })
		h.step("scenario "+sc.name, begin)
		if !ok {
			break
		}
	}
}

// env is what the scenarios share.
type env struct {
	h      *Harness
	k      *Kubelet
	s3     testenv.S3Server
	bucket string
	backup *cnpgv1.Backup // the completed plugin backup of "source"
	// targetTime lies between rows 2 and 3 of source's table e2e.
	targetTime string
}

// scenarioArchiving: a Cluster using the plugin as WAL archiver gets the
// sidecar injected by the operator through the plugin's lifecycle hook,
// its Role from the plugin's reconciler hook, reports the plugin in its
// status, and archives WAL to the store (ContinuousArchiving True).
func scenarioArchiving(ctx context.Context, t *testing.T, e *env) {
	c := pluginCluster(ns, "source", "store")
	if err := e.h.Client.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := waitFor(ctx, 2*time.Minute, func() (bool, error) {
		err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "source-1"}, &pod)
		return err == nil, client.IgnoreNotFound(err)
	}); err != nil {
		t.Fatalf("instance pod not created: %v; kubelet: %v", err, e.k.Errors())
	}
	i := slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == "plugin-barman-cloud" })
	if i < 0 {
		t.Fatalf("the operator did not inject the plugin sidecar: init containers %v", names(pod.Spec.InitContainers))
	}
	sc := pod.Spec.InitContainers[i]
	if sc.Image != PluginImage || len(sc.Args) < 2 || sc.Args[0] != "plugin" || sc.Args[1] != "instance" {
		t.Errorf("sidecar image %s args %v, want %s plugin instance", sc.Image, sc.Args, PluginImage)
	}
	var role rbacv1.Role
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "source-barman-cloud"}, &role)
		return err == nil, client.IgnoreNotFound(err)
	}); err != nil {
		t.Fatalf("the plugin did not create the Role: %v", err)
	}
	if !roleGrants(&role, "secrets", "store-creds") || !roleGrants(&role, "objectstores", "store") {
		t.Errorf("role rules %+v do not grant the store and its secret", role.Rules)
	}
	if err := waitFor(ctx, 3*time.Minute, func() (bool, error) {
		if err := e.h.Client.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			return false, err
		}
		return c.Status.ReadyInstances == 1, nil
	}); err != nil {
		t.Fatalf("cluster not ready (phase %q): %v; kubelet: %v", c.Status.Phase, err, e.k.Errors())
	}
	if !slices.ContainsFunc(c.Status.PluginStatus, func(p cnpgv1.PluginStatus) bool { return p.Name == pluginName && p.Version != "" }) {
		t.Errorf("status.pluginStatus %+v lacks %s with a version", c.Status.PluginStatus, pluginName)
	}
	if _, err := e.k.PSQL(ctx, ns, "source-1", "SELECT pg_switch_wal()"); err != nil {
		t.Fatal(err)
	}
	var msg string
	if err := waitFor(ctx, 2*time.Minute, func() (bool, error) {
		if err := e.h.Client.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			return false, err
		}
		var st string
		st, msg = clusterConditionString(c, "ContinuousArchiving")
		return st == "True", nil
	}); err != nil {
		t.Fatalf("ContinuousArchiving not True (%q): %v", msg, err)
	}
	var keys []string
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		var err error
		keys, err = listKeys(ctx, e.s3, e.bucket, "source/wals/")
		return hasWAL(keys), err
	}); err != nil {
		t.Fatalf("no WAL segment in s3://%s/source/wals/ (%v): %v", e.bucket, keys, err)
	}
	t.Logf("archived: %s", strings.Join(keys, " "))
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func roleGrants(r *rbacv1.Role, resource, name string) bool {
	for _, rule := range r.Rules {
		if slices.Contains(rule.Resources, resource) && slices.Contains(rule.ResourceNames, name) {
			return true
		}
	}
	return false
}

func clusterConditionString(c *cnpgv1.Cluster, typ string) (string, string) {
	st, msg := clusterCondition(c, typ)
	return string(st), msg
}
