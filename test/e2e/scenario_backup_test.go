package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// scenarioBackup: a Backup with method plugin, run by the real instance
// manager through the sidecar's Backup service, completes with the
// backup's identity and WAL range in its status and lands in the store;
// the Cluster records LastBackupSucceeded.
func scenarioBackup(ctx context.Context, t *testing.T, e *env) {
	if _, err := e.k.PSQL(ctx, ns, "source-1", "CREATE TABLE e2e(x int); INSERT INTO e2e VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	b := &cnpgv1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "source-backup-1"},
		Spec: cnpgv1.BackupSpec{
			Cluster:             cnpgv1.LocalObjectReference{Name: "source"},
			Method:              cnpgv1.BackupMethodPlugin,
			PluginConfiguration: &cnpgv1.BackupPluginConfiguration{Name: pluginName},
		},
	}
	if err := e.h.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, 3*time.Minute, func() (bool, error) {
		if err := e.h.Client.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return false, err
		}
		return b.Status.Phase == cnpgv1.BackupPhaseCompleted || b.Status.Phase == cnpgv1.BackupPhaseFailed, nil
	}); err != nil {
		t.Fatalf("backup not finished (phase %q): %v", b.Status.Phase, err)
	}
	st := b.Status
	if st.Phase != cnpgv1.BackupPhaseCompleted {
		t.Fatalf("backup phase %s: %s", st.Phase, st.Error)
	}
	t.Logf("backup %s: WAL %s..%s LSN %s..%s, plugin metadata %v", st.BackupID, st.BeginWal, st.EndWal, st.BeginLSN, st.EndLSN, st.PluginMetadata)
	if st.BackupID == "" || st.BeginWal == "" || st.EndWal == "" || st.BeginLSN == "" || st.EndLSN == "" || st.StartedAt == nil || st.StoppedAt == nil {
		t.Errorf("incomplete backup status: %+v", st)
	}
	if st.Method != cnpgv1.BackupMethodPlugin {
		t.Errorf("status.method %q, want plugin", st.Method)
	}
	keys, err := listKeys(ctx, e.s3, e.bucket, "source/base/"+st.BackupID+"/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, "/backup.info") }) {
		t.Errorf("no backup.info under source/base/%s/: %v", st.BackupID, keys)
	}
	var c cnpgv1.Cluster
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		if err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "source"}, &c); err != nil {
			return false, err
		}
		s, _ := clusterCondition(&c, "LastBackupSucceeded")
		return s == metav1.ConditionTrue, nil
	}); err != nil {
		t.Errorf("LastBackupSucceeded not True: %v (conditions %+v)", err, c.Status.Conditions)
	}
	e.backup = b
}
