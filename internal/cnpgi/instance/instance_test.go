package instance_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	backuppb "github.com/cloudnative-pg/cnpg-i/pkg/backup"
	"github.com/cloudnative-pg/cnpg-i/pkg/identity"
	metricspb "github.com/cloudnative-pg/cnpg-i/pkg/metrics"
	walpb "github.com/cloudnative-pg/cnpg-i/pkg/wal"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/cnpgitest"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/instance"
	"github.com/bcloud-dev/bcloud/internal/layout"
)

func TestMain(m *testing.M) {
	cnpgitest.Main(m, func(ctx context.Context, c client.Client, pluginPath string) error {
		return instance.Start(ctx, instance.Options{
			Client: c, Namespace: os.Getenv("NAMESPACE"), ClusterName: os.Getenv("CLUSTER_NAME"),
			PodName: os.Getenv("POD_NAME"), SpoolDir: os.Getenv("SPOOL_DIRECTORY"),
			PluginPath: pluginPath, NoMaintenance: true,
		})
	})
}

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// TestInstanceSidecar runs PostgreSQL 15 archiving through the sidecar,
// then calls Backup, Metrics and WAL restore as CloudNativePG does.
func TestInstanceSidecar(t *testing.T) {
	src := cnpgitest.NewSource(t, cnpgitest.SourceOptions{})
	p := src.Plugin
	t.Run("capabilities", func(t *testing.T) {
		want := []identity.PluginCapability_Service_Type{identity.PluginCapability_Service_TYPE_WAL_SERVICE,
			identity.PluginCapability_Service_TYPE_BACKUP_SERVICE, identity.PluginCapability_Service_TYPE_METRICS}
		for _, s := range want {
			if !p.Services[s] {
				t.Errorf("%s not advertised", s)
			}
		}
		if len(p.Services) != len(want) || len(p.WAL.GetCapabilities()) != 2 || len(p.Backup.GetCapabilities()) != 1 || len(p.Metrics.GetCapabilities()) != 1 {
			t.Errorf("capabilities: services %v wal %v backup %v metrics %v", p.Services, p.WAL, p.Backup, p.Metrics)
		}
		h, err := healthpb.NewHealthClient(p.Conn).Check(tctx(t), &healthpb.HealthCheckRequest{})
		if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %v %v", h, err)
		}
		if _, err := walpb.NewWALClient(p.Conn).Status(tctx(t), &walpb.WALStatusRequest{}); status.Code(err) != codes.Unimplemented {
			t.Errorf("WAL.Status: %v", err)
		}
	})

	marker := filepath.Join(src.PG.DataDir, cnpgi.CheckEmptyWALArchiveFile)
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	src.SwitchWAL(t, 4)
	t.Run("archive", func(t *testing.T) {
		wals := src.ArchivedWAL(t, "pg")
		if len(wals) < 4 {
			t.Fatalf("archived objects %v", wals)
		}
		for _, k := range wals {
			if !strings.HasPrefix(k, "wals/0000000100000000/00000001000000000000000") || !strings.HasSuffix(k, ".gz") {
				t.Errorf("unexpected WAL object %s", k)
			}
		}
		if _, err := os.Stat(marker); !os.IsNotExist(err) {
			t.Error("the empty-archive check marker was not removed after the first archive")
		}
	})

	var first, second *backuppb.BackupResult
	t.Run("backup", func(t *testing.T) {
		first = backup(t, src, "backup-one")
		info := backupInfo(t, src, first.GetBackupId())
		checkResult(t, first, first.GetBackupId(), info)
		checkWindow(t, src, info.EndTime, info.EndTime, nil)
		checkMetrics(t, src, info.EndTime.Unix(), info.EndTime.Unix(), 0)

		src.SwitchWAL(t, 1)
		time.Sleep(time.Second) // backup IDs have a one-second resolution
		second = backup(t, src, "backup-two")
		info2 := backupInfo(t, src, second.GetBackupId())
		checkResult(t, second, second.GetBackupId(), info2)
		checkWindow(t, src, info.EndTime, info2.EndTime, nil)
		checkMetrics(t, src, info.EndTime.Unix(), info2.EndTime.Unix(), 0)
	})

	t.Run("failed backup", func(t *testing.T) {
		svc := &instance.BackupService{Stores: &cnpgi.Stores{Client: src.Client}, Window: &instance.Window{Client: src.Client},
			PodName: "pg-1", ConnInfo: "host=/nonexistent port=1 user=postgres dbname=postgres connect_timeout=2"}
		before := time.Now().Truncate(time.Second)
		_, err := svc.Backup(tctx(t), &backuppb.BackupRequest{ClusterDefinition: src.Cluster.JSON(t),
			BackupDefinition: cnpgitest.BackupJSON(t, src.Cluster, "backup-broken")})
		if err == nil {
			t.Fatal("backup without PostgreSQL succeeded")
		}
		os := objectStore(t, src)
		failed := os.Status.ServerRecoveryWindow["pg"].LastFailedBackupTime
		if failed == nil || failed.Time.Before(before) {
			t.Fatalf("lastFailedBackupTime %v", failed)
		}
		metrics := collect(t, src)
		if metrics[instance.MetricLastFailedBackup] != float64(failed.Unix()) || metrics[instance.MetricFirstRecoverability] == 0 {
			t.Errorf("metrics after failure %v", metrics)
		}
	})

	t.Run("restore", func(t *testing.T) { testRestore(t, src) })
	t.Run("archive errors", func(t *testing.T) { testArchiveErrors(t, src) })
	t.Run("maintenance", func(t *testing.T) { testMaintenance(t, src, first, second) })
}

func backup(t *testing.T, src *cnpgitest.Source, name string) *backuppb.BackupResult {
	t.Helper()
	res, err := backuppb.NewBackupClient(src.Plugin.Conn).Backup(tctx(t), &backuppb.BackupRequest{
		ClusterDefinition: src.Cluster.JSON(t), BackupDefinition: cnpgitest.BackupJSON(t, src.Cluster, name)})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return res
}

// backupInfo reads backup.info from the store, independently of the sidecar.
func backupInfo(t *testing.T, src *cnpgitest.Source, id string) *catalog.BackupInfo {
	t.Helper()
	if !layout.IsBackupID(id) {
		t.Fatalf("backup id %q", id)
	}
	data, err := os.ReadFile(filepath.Join(src.GW.Root, src.Bucket, "cnpg", layout.BackupInfoKey("pg", id)))
	if err != nil {
		t.Fatal(err)
	}
	info, err := catalog.ParseBackupInfo(data)
	if err != nil {
		t.Fatal(err)
	}
	if info.StatusValue() != catalog.StatusDone {
		t.Fatalf("backup %s status %s", id, info.StatusValue())
	}
	return info
}

func checkResult(t *testing.T, r *backuppb.BackupResult, id string, info *catalog.BackupInfo) {
	t.Helper()
	if r.GetBackupId() != id || !strings.HasPrefix(r.GetBackupName(), "backup-") || r.GetBackupName() != catalog.Str(info.BackupName) ||
		r.GetStartedAt() != info.BeginTime.Unix() || r.GetStoppedAt() != info.EndTime.Unix() ||
		r.GetBeginWal() != catalog.Str(info.BeginWAL) || r.GetEndWal() != catalog.Str(info.EndWAL) ||
		r.GetBeginLsn() != catalog.Str(info.BeginXlog) || r.GetEndLsn() != catalog.Str(info.EndXlog) ||
		!r.GetOnline() || r.GetInstanceId() != "pg-1" {
		t.Errorf("backup result %+v\nbackup.info begin %v end %v wal %s..%s lsn %s..%s", r, info.BeginTime, info.EndTime,
			catalog.Str(info.BeginWAL), catalog.Str(info.EndWAL), catalog.Str(info.BeginXlog), catalog.Str(info.EndXlog))
	}
	want := map[string]string{"timeline": "1", "version": cnpgi.Version, "name": cnpgi.PluginName,
		"displayName": cnpgi.DisplayName, "clusterUID": "uid-pg", "pluginName": cnpgi.PluginName}
	for k, v := range want {
		if r.GetMetadata()[k] != v {
			t.Errorf("pluginMetadata %s=%q, want %q", k, r.GetMetadata()[k], v)
		}
	}
}

func objectStore(t *testing.T, src *cnpgitest.Source) *apiv1.ObjectStore {
	t.Helper()
	var os apiv1.ObjectStore
	if err := src.Client.Get(tctx(t), types.NamespacedName{Namespace: "db", Name: "store"}, &os); err != nil {
		t.Fatal(err)
	}
	return &os
}

func checkWindow(t *testing.T, src *cnpgitest.Source, first, last *time.Time, failed *time.Time) {
	t.Helper()
	w := objectStore(t, src).Status.ServerRecoveryWindow["pg"]
	if w.FirstRecoverabilityPoint == nil || w.FirstRecoverabilityPoint.Unix() != first.Unix() ||
		w.LastSuccessfulBackupTime == nil || w.LastSuccessfulBackupTime.Unix() != last.Unix() ||
		(failed == nil) != (w.LastFailedBackupTime == nil) {
		t.Errorf("recovery window %+v, want first %v last %v failed %v", w, first, last, failed)
	}
}

func collect(t *testing.T, src *cnpgitest.Source) map[string]float64 {
	t.Helper()
	mc := metricspb.NewMetricsClient(src.Plugin.Conn)
	def, err := mc.Define(tctx(t), &metricspb.DefineMetricsRequest{ClusterDefinition: src.Cluster.JSON(t)})
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range def.GetMetrics() {
		if m.GetValueType().GetType() != metricspb.MetricType_TYPE_GAUGE || m.GetHelp() == "" {
			t.Errorf("metric %s: type %v help %q", m.GetFqName(), m.GetValueType(), m.GetHelp())
		}
		defined[m.GetFqName()] = true
	}
	res, err := mc.Collect(tctx(t), &metricspb.CollectMetricsRequest{ClusterDefinition: src.Cluster.JSON(t)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, m := range res.GetMetrics() {
		if !defined[m.GetFqName()] {
			t.Errorf("collected metric %s was not defined", m.GetFqName())
		}
		out[m.GetFqName()] = m.GetValue()
	}
	return out
}

func checkMetrics(t *testing.T, src *cnpgitest.Source, first, last, failed int64) {
	t.Helper()
	got := collect(t, src)
	want := map[string]float64{
		"barman_cloud_cloudnative_pg_io_first_recoverability_point":      float64(first),
		"barman_cloud_cloudnative_pg_io_last_available_backup_timestamp": float64(last),
		"barman_cloud_cloudnative_pg_io_last_failed_backup_timestamp":    float64(failed),
	}
	if len(got) != 3 {
		t.Errorf("metrics %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metric %s = %v, want %v", k, got[k], v)
		}
	}
}

// gunzipObject reads a WAL object straight from the versitygw backend.
func gunzipObject(t *testing.T, src *cnpgitest.Source, key string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(src.GW.Root, src.Bucket, "cnpg", "pg", key))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sortedWAL(t *testing.T, src *cnpgitest.Source) []string {
	t.Helper()
	var names []string
	for _, k := range src.ArchivedWAL(t, "pg") {
		base := filepath.Base(k)
		if strings.HasSuffix(base, ".gz") && !strings.Contains(base, ".backup") {
			names = append(names, strings.TrimSuffix(base, ".gz"))
		}
	}
	slices.Sort(names)
	return names
}

func equalFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the archived WAL (%d vs %d bytes)", path, len(got), len(want))
	}
}
