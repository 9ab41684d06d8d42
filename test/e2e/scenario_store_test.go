package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
)

// metricsPort is the instance manager's metrics exporter port.
const metricsPort = 9187

// pluginMetricPrefix starts the plugin's metric names (the plugin name
// with dots and dashes as underscores), as the instance manager exports
// them.
const pluginMetricPrefix = "barman_cloud_cloudnative_pg_io_"

// scenarioWindowAndMetrics: after the backup, the ObjectStore's
// status.serverRecoveryWindow[source] holds the first recoverability point
// and the last successful backup time, and the instance manager's metrics
// endpoint serves the plugin's gauges with the same values.
func scenarioWindowAndMetrics(ctx context.Context, t *testing.T, e *env) {
	if e.backup == nil {
		t.Fatal("the backup scenario this one needs did not produce a backup")
	}
	var rw apiv1.RecoveryWindow
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		var os apiv1.ObjectStore
		if err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "store"}, &os); err != nil {
			return false, err
		}
		rw = os.Status.ServerRecoveryWindow["source"]
		return rw.FirstRecoverabilityPoint != nil && rw.LastSuccessfulBackupTime != nil, nil
	}); err != nil {
		t.Fatalf("status.serverRecoveryWindow[source] not set (%+v): %v", rw, err)
	}
	st := e.backup.Status
	near := func(a, b time.Time) bool { return math.Abs(a.Sub(b).Seconds()) <= 2 }
	if !near(rw.LastSuccessfulBackupTime.Time, st.StoppedAt.Time) {
		t.Errorf("lastSuccessfulBackupTime %s, backup stopped at %s", rw.LastSuccessfulBackupTime, st.StoppedAt)
	}
	if rw.FirstRecoverabilityPoint.Before(&metav1.Time{Time: st.StartedAt.Add(-2 * time.Second)}) ||
		rw.FirstRecoverabilityPoint.After(st.StoppedAt.Add(2*time.Second)) {
		t.Errorf("firstRecoverabilityPoint %s outside the backup [%s, %s]", rw.FirstRecoverabilityPoint, st.StartedAt, st.StoppedAt)
	}
	var got map[string]float64
	if err := waitFor(ctx, 30*time.Second, func() (bool, error) {
		var err error
		got, err = scrape(ctx, fmt.Sprintf("http://%s:%d/metrics", podIP, metricsPort), pluginMetricPrefix)
		return len(got) >= 3, err
	}); err != nil {
		t.Fatalf("plugin metrics not served (%v): %v", got, err)
	}
	t.Logf("metrics: %v", got)
	for name, v := range got {
		switch {
		case name == pluginMetricPrefix+"first_recoverability_point":
			if int64(v) != rw.FirstRecoverabilityPoint.Unix() {
				t.Errorf("%s = %v, status says %d", name, v, rw.FirstRecoverabilityPoint.Unix())
			}
		case name == pluginMetricPrefix+"last_available_backup_timestamp":
			if int64(v) != rw.LastSuccessfulBackupTime.Unix() {
				t.Errorf("%s = %v, status says %d", name, v, rw.LastSuccessfulBackupTime.Unix())
			}
		case name == pluginMetricPrefix+"last_failed_backup_timestamp":
			if v != 0 {
				t.Errorf("%s = %v, want 0: no backup failed", name, v)
			}
		}
	}
}

// scrape returns the samples of metrics whose name starts with prefix.
func scrape(ctx context.Context, url, prefix string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, prefix) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// scenarioCredentialRotation: pointing the ObjectStore at a new Secret
// makes the plugin's ObjectStore controller rewrite the Cluster's Role,
// and the sidecar keeps archiving with the new Secret.
func scenarioCredentialRotation(ctx context.Context, t *testing.T, e *env) {
	var old corev1.Secret
	if err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "store-creds"}, &old); err != nil {
		t.Fatal(err)
	}
	rotated := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "store-creds-rotated"}, Data: old.Data}
	if err := e.h.Client.Create(ctx, rotated); err != nil {
		t.Fatal(err)
	}
	store := &unstructured.Unstructured{}
	store.SetAPIVersion("barmancloud.cnpg.io/v1")
	store.SetKind("ObjectStore")
	if err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "store"}, store); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"accessKeyId", "secretAccessKey", "region"} {
		if err := unstructured.SetNestedField(store.Object, rotated.Name, "spec", "configuration", "s3Credentials", k, "name"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.h.Client.Update(ctx, store); err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		if err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "source-barman-cloud"}, &role); err != nil {
			return false, err
		}
		return roleGrants(&role, "secrets", rotated.Name) && !roleGrants(&role, "secrets", "store-creds"), nil
	}); err != nil {
		t.Fatalf("the Role was not updated for the rotated Secret (rules %+v): %v", role.Rules, err)
	}
	// The old Secret goes away; archiving must go on with the new one.
	if err := e.h.Client.Delete(ctx, &old); err != nil {
		t.Fatal(err)
	}
	out, err := e.k.PSQL(ctx, ns, "source-1", "SELECT pg_walfile_name(pg_switch_wal())")
	if err != nil {
		t.Fatal(err)
	}
	seg := strings.TrimSpace(out)
	if err := waitFor(ctx, 2*time.Minute, func() (bool, error) {
		out, err := e.k.PSQL(ctx, ns, "source-1", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
		return err == nil && strings.TrimSpace(out) >= seg, err
	}); err != nil {
		t.Fatalf("segment %s not archived after the rotation: %v", seg, err)
	}
}

// scenarioRetention: with retentionPolicy 7d, a backup 20 days old is
// deleted from the store with its Backup object, while one 10 days old
// (needed to recover to the start of the window) and the recent one stay.
// The two old backups are forged from the real one: copies under older
// IDs with older times in backup.info, and Backup objects made with the
// operator's reconciliation disabled (so it does not run them).
func scenarioRetention(ctx context.Context, t *testing.T, e *env) {
	if e.backup == nil {
		t.Fatal("the backup scenario this one needs did not produce a backup")
	}
	now := time.Now().UTC()
	old20 := e.forgeBackup(ctx, t, "forged-20d", now.Add(-20*24*time.Hour))
	old10 := e.forgeBackup(ctx, t, "forged-10d", now.Add(-10*24*time.Hour))
	// The sidecar's maintenance loop runs every retentionPolicyIntervalSeconds
	// (3s here); its first cycle, before the instance is primary, currently
	// waits the 5-minute default instead (upstream uses the interval).
	begin := time.Now()
	if err := waitFor(ctx, 6*time.Minute, func() (bool, error) {
		keys, err := listKeys(ctx, e.s3, e.bucket, "source/base/"+old20+"/")
		return len(keys) == 0, err
	}); err != nil {
		t.Fatalf("the 20-day-old backup %s was not deleted: %v", old20, err)
	}
	t.Logf("retention deleted %s after %s", old20, time.Since(begin).Round(time.Second))
	if err := waitFor(ctx, 30*time.Second, func() (bool, error) {
		err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "forged-20d"}, &cnpgv1.Backup{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	}); err != nil {
		t.Errorf("Backup forged-20d not deleted: %v", err)
	}
	for _, id := range []string{old10, e.backup.Status.BackupID} {
		keys, err := listKeys(ctx, e.s3, e.bucket, "source/base/"+id+"/")
		if err != nil || len(keys) == 0 {
			t.Errorf("backup %s should be kept: %v %v", id, keys, err)
		}
	}
	for _, name := range []string{"forged-10d", e.backup.Name} {
		if err := e.h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cnpgv1.Backup{}); err != nil {
			t.Errorf("Backup %s should be kept: %v", name, err)
		}
	}
}

// forgeBackup copies the real backup to a new ID as if taken at `at`,
// and records a completed Backup object for it; it returns the ID.
func (e *env) forgeBackup(ctx context.Context, t *testing.T, name string, at time.Time) string {
	t.Helper()
	src := e.backup.Status
	id := at.Format("20060102T150405")
	cli := e.s3.Client()
	keys, err := listKeys(ctx, e.s3, e.bucket, "source/base/"+src.BackupID+"/")
	if err != nil || len(keys) == 0 {
		t.Fatalf("list the real backup: %v %v", keys, err)
	}
	shift := at.Sub(src.StartedAt.Time)
	for _, k := range keys {
		obj, err := cli.GetObject(ctx, &s3api.GetObjectInput{Bucket: &e.bucket, Key: &k})
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(obj.Body)
		_ = obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(k, "/backup.info") {
			body = rewriteBackupInfo(body, src.BackupID, id, shift)
		}
		nk := strings.Replace(k, "/"+src.BackupID+"/", "/"+id+"/", 1)
		if _, err := cli.PutObject(ctx, &s3api.PutObjectInput{Bucket: &e.bucket, Key: &nk, Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	b := &cnpgv1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{"cnpg.io/reconciliationLoop": "disabled"}},
		Spec: cnpgv1.BackupSpec{Cluster: cnpgv1.LocalObjectReference{Name: "source"}, Method: cnpgv1.BackupMethodPlugin,
			PluginConfiguration: &cnpgv1.BackupPluginConfiguration{Name: pluginName}},
	}
	if err := e.h.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Status = *src.DeepCopy()
	b.Status.BackupID, b.Status.BackupName = id, name
	b.Status.StartedAt = &metav1.Time{Time: src.StartedAt.Add(shift)}
	b.Status.StoppedAt = &metav1.Time{Time: src.StoppedAt.Add(shift)}
	if err := e.h.Client.Status().Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	return id
}

// rewriteBackupInfo changes the ID and shifts the times of a backup.info.
func rewriteBackupInfo(info []byte, oldID, newID string, shift time.Duration) []byte {
	var out bytes.Buffer
	for _, line := range strings.Split(strings.TrimRight(string(info), "\n"), "\n") {
		k, v, ok := strings.Cut(line, "=")
		switch {
		case !ok:
		case k == "backup_id" || k == "backup_name":
			v = strings.ReplaceAll(v, oldID, newID)
		case k == "begin_time" || k == "end_time":
			for _, layout := range []string{"2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05-07:00"} {
				if tm, err := time.Parse(layout, v); err == nil {
					v = tm.Add(shift).Format(layout)
					break
				}
			}
		}
		if ok {
			line = k + "=" + v
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes()
}
