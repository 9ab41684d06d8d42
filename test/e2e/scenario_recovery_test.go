package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// scenarioWritesAfterBackup writes row 2, records a recovery target time,
// writes row 3, and waits until the WAL holding row 3 is archived. It
// then hibernates the source Cluster: pods share the host network, so only
// one PostgreSQL instance runs at a time.
func scenarioWritesAfterBackup(ctx context.Context, t *testing.T, e *env) {
	if _, err := e.k.PSQL(ctx, ns, "source-1", "INSERT INTO e2e VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	out, err := e.k.PSQL(ctx, ns, "source-1", "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
	if err != nil {
		t.Fatal(err)
	}
	e.targetTime = strings.TrimSpace(out)
	time.Sleep(1100 * time.Millisecond)
	if _, err := e.k.PSQL(ctx, ns, "source-1", "INSERT INTO e2e VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	out, err = e.k.PSQL(ctx, ns, "source-1", "SELECT pg_walfile_name(pg_switch_wal())")
	if err != nil {
		t.Fatal(err)
	}
	seg := strings.TrimSpace(out)
	if err := waitFor(ctx, 2*time.Minute, func() (bool, error) {
		out, err := e.k.PSQL(ctx, ns, "source-1", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
		return err == nil && strings.TrimSpace(out) >= seg, err
	}); err != nil {
		t.Fatalf("segment %s not archived: %v", seg, err)
	}
	t.Logf("target time %s; rows 1 (in the backup), 2 (before), 3 (after); last segment %s archived", e.targetTime, seg)
	if err := e.hibernate(ctx, "source"); err != nil {
		t.Fatal(err)
	}
}

// hibernate asks the operator to hibernate a Cluster and waits until its
// pods are gone.
func (e *env) hibernate(ctx context.Context, name string) error {
	var c cnpgv1.Cluster
	if err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c); err != nil {
		return err
	}
	patch := client.MergeFrom(c.DeepCopy())
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations["cnpg.io/hibernation"] = "on"
	if err := e.h.Client.Patch(ctx, &c, patch); err != nil {
		return fmt.Errorf("hibernate %s: %w", name, err)
	}
	return waitFor(ctx, 2*time.Minute, func() (bool, error) {
		var pods corev1.PodList
		if err := e.h.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"cnpg.io/cluster": name}); err != nil {
			return false, err
		}
		return len(pods.Items) == 0, nil
	})
}

// recoveryCluster bootstraps from the plugin's store, serverName source.
func recoveryCluster(name string, target *cnpgv1.RecoveryTarget) *cnpgv1.Cluster {
	return &cnpgv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cnpgv1.ClusterSpec{
			Instances:            1,
			ImageName:            pgImage,
			StorageConfiguration: cnpgv1.StorageConfiguration{Size: "1Gi"},
			Bootstrap: &cnpgv1.BootstrapConfiguration{Recovery: &cnpgv1.BootstrapRecovery{
				Source: "origin", RecoveryTarget: target,
			}},
			ExternalClusters: []cnpgv1.ExternalCluster{{
				Name: "origin",
				PluginConfiguration: &cnpgv1.PluginConfiguration{
					Name:       pluginName,
					Parameters: map[string]string{"barmanObjectName": "store", "serverName": "source"},
				},
			}},
		},
	}
}

// restoreAndCount creates a recovery Cluster, checks the operator ran the
// full-recovery Job with the plugin's restore sidecar, waits for the
// instance and returns the rows of table e2e.
func (e *env) restoreAndCount(ctx context.Context, t *testing.T, c *cnpgv1.Cluster) []string {
	t.Helper()
	if err := e.h.Client.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	var job batchv1.Job
	if err := waitFor(ctx, 2*time.Minute, func() (bool, error) {
		err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: c.Name + "-1-full-recovery"}, &job)
		return err == nil, client.IgnoreNotFound(err)
	}); err != nil {
		t.Fatalf("no full-recovery job: %v; kubelet: %v", err, e.k.Errors())
	}
	i := slices.IndexFunc(job.Spec.Template.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == "plugin-barman-cloud" })
	if i < 0 {
		t.Fatalf("the plugin's restore sidecar is not in the recovery job: %v", names(job.Spec.Template.Spec.InitContainers))
	}
	if args := job.Spec.Template.Spec.InitContainers[i].Args; !slices.Equal(args, []string{"plugin", "restore"}) {
		t.Errorf("restore sidecar args %v, want [plugin restore]", args)
	}
	if err := waitFor(ctx, 4*time.Minute, func() (bool, error) {
		if err := e.h.Client.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			return false, err
		}
		return c.Status.ReadyInstances == 1, nil
	}); err != nil {
		t.Fatalf("cluster %s not ready (phase %q): %v; kubelet: %v", c.Name, c.Status.Phase, err, e.k.Errors())
	}
	out, err := e.k.PSQL(ctx, ns, c.Name+"-1", "SELECT string_agg(x::text, ',' ORDER BY x) FROM e2e")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(out), ",")
}

// scenarioRecovery: a new Cluster bootstraps by recovery from the store
// (the full-recovery Job with the plugin's restore sidecar, then WAL
// replay through wal-restore) to the end of the archived WAL.
func scenarioRecovery(ctx context.Context, t *testing.T, e *env) {
	rows := e.restoreAndCount(ctx, t, recoveryCluster("restored", nil))
	if !slices.Equal(rows, []string{"1", "2", "3"}) {
		t.Errorf("restored rows %v, want [1 2 3]", rows)
	}
	if err := e.hibernate(ctx, "restored"); err != nil {
		t.Fatal(err)
	}
}

// scenarioRecoveryTargetTime: recovery to the time recorded between rows
// 2 and 3 keeps row 2 and not row 3.
func scenarioRecoveryTargetTime(ctx context.Context, t *testing.T, e *env) {
	if e.targetTime == "" {
		t.Fatal("no target time was recorded by the earlier scenario")
	}
	rows := e.restoreAndCount(ctx, t, recoveryCluster("pitr", &cnpgv1.RecoveryTarget{TargetTime: e.targetTime}))
	if !slices.Equal(rows, []string{"1", "2"}) {
		t.Errorf("rows after recovery to %s: %v, want [1 2]", e.targetTime, rows)
	}
	if err := e.hibernate(ctx, "pitr"); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}
