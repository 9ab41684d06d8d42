package instance_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	backuppb "github.com/cloudnative-pg/cnpg-i/pkg/backup"
	walpb "github.com/cloudnative-pg/cnpg-i/pkg/wal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/cnpgitest"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/instance"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

func restoreWAL(t *testing.T, src *cnpgitest.Source, cluster cnpgitest.Cluster, name, dest string, mode walpb.WALRestoreRequest_Mode) error {
	t.Helper()
	_, err := walpb.NewWALClient(src.Plugin.Conn).Restore(tctx(t), &walpb.WALRestoreRequest{
		ClusterDefinition: cluster.JSON(t), SourceWalName: name, DestinationFileName: dest, Mode: mode})
	return err
}

func spooled(t *testing.T, src *cnpgitest.Source) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(src.SpoolDir, "prefetch"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func nextSegment(t *testing.T, name string, n int) string {
	t.Helper()
	seg, err := wal.ParseSegment(name)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		seg = seg.Next(16 << 20)
	}
	return seg.Name()
}

func testRestore(t *testing.T, src *cnpgitest.Source) {
	names := sortedWAL(t, src)
	if len(names) < 5 {
		t.Fatalf("archived segments %v", names)
	}
	last := names[len(names)-1]
	missing := nextSegment(t, last, 1)
	dir := t.TempDir()
	dest := filepath.Join(dir, "RECOVERYXLOG")
	recovery := walpb.WALRestoreRequest_MODE_RECOVERY
	code := func(err error) codes.Code { return status.Code(err) }

	// A standby (pg-1 while pg-2 is primary) reads its own store and may
	// stop at the end of the archive to stream.
	standby := src.Cluster
	standby.CurrentPrimary = "pg-2"
	t.Run("prefetch", func(t *testing.T) {
		if err := restoreWAL(t, src, standby, names[0], dest, recovery); err != nil {
			t.Fatal(err)
		}
		equalFile(t, dest, gunzipObject(t, src, "wals/0000000100000000/"+names[0]+".gz"))
		if got := spooled(t, src); !slices.Equal(got, names[1:3]) {
			t.Fatalf("spool holds %v, want the next two segments %v (maxParallel 3)", got, names[1:3])
		}
		if err := restoreWAL(t, src, standby, names[1], dest, recovery); err != nil {
			t.Fatal(err)
		}
		equalFile(t, dest, gunzipObject(t, src, "wals/0000000100000000/"+names[1]+".gz"))
		if got := spooled(t, src); !slices.Equal(got, names[2:3]) {
			t.Fatalf("spool after serving %s: %v", names[1], got)
		}
	})
	t.Run("end of WAL", func(t *testing.T) {
		if err := restoreWAL(t, src, standby, last, dest, recovery); err != nil {
			t.Fatal(err)
		}
		if err := restoreWAL(t, src, standby, missing, dest, recovery); code(err) != codes.OutOfRange {
			t.Fatalf("after a prefetch found the end of the archive: %v, want OutOfRange", err)
		}
		if err := restoreWAL(t, src, standby, missing, dest, recovery); code(err) != codes.NotFound {
			t.Fatalf("asked again: %v, want NotFound from the archive", err)
		}
	})
	t.Run("rewind", func(t *testing.T) {
		if err := restoreWAL(t, src, standby, last, dest, recovery); err != nil {
			t.Fatal(err)
		}
		before := spooled(t, src)
		// pg_rewind: no OutOfRange short-cut, no prefetch.
		if err := restoreWAL(t, src, standby, missing, dest, walpb.WALRestoreRequest_MODE_REWIND); code(err) != codes.NotFound {
			t.Fatalf("rewind of a missing segment: %v, want NotFound", err)
		}
		if err := restoreWAL(t, src, standby, names[0], dest, walpb.WALRestoreRequest_MODE_REWIND); err != nil {
			t.Fatal(err)
		}
		after := spooled(t, src)
		if len(after) > len(before) {
			t.Fatalf("rewind prefetched: %v -> %v", before, after)
		}
	})
	t.Run("bootstrap reads the recovery store", func(t *testing.T) {
		boot := cnpgitest.Cluster{Name: "copy", Namespace: "db", UID: "uid-copy",
			Recovery: map[string]string{"barmanObjectName": "store", "serverName": "pg"}}
		if err := restoreWAL(t, src, boot, names[2], dest, recovery); err != nil {
			t.Fatal(err)
		}
		equalFile(t, dest, gunzipObject(t, src, "wals/0000000100000000/"+names[2]+".gz"))
		if err := restoreWAL(t, src, boot, last, dest, recovery); err != nil {
			t.Fatal(err)
		}
		// No streaming to switch to: the archive is asked again.
		if err := restoreWAL(t, src, boot, missing, dest, recovery); code(err) != codes.NotFound {
			t.Fatalf("bootstrap end of archive: %v, want NotFound", err)
		}
	})
	t.Run("designated primary reads the replica source", func(t *testing.T) {
		for _, conn := range []bool{true, false} {
			rep := cnpgitest.Cluster{Name: "replica", Namespace: "db", CurrentPrimary: "pg-1", ReplicaConn: conn,
				Replica: map[string]string{"barmanObjectName": "store", "serverName": "pg"}}
			if err := restoreWAL(t, src, rep, last, dest, recovery); err != nil {
				t.Fatal(err)
			}
			want := codes.NotFound
			if conn {
				want = codes.OutOfRange
			}
			if err := restoreWAL(t, src, rep, missing, dest, recovery); code(err) != want {
				t.Fatalf("replica source with connection parameters=%v: %v, want %v", conn, err, want)
			}
		}
	})
	t.Run("codes", func(t *testing.T) {
		if err := restoreWAL(t, src, standby, "not-a-wal", dest, recovery); code(err) != codes.InvalidArgument {
			t.Errorf("bad name: %v", err)
		}
		if err := restoreWAL(t, src, standby, "00000009.history", dest, recovery); code(err) != codes.NotFound {
			t.Errorf("missing history file: %v", err)
		}
		other := standby
		other.Archive = map[string]string{"barmanObjectName": "nope"}
		if err := restoreWAL(t, src, other, names[0], dest, recovery); code(err) != codes.FailedPrecondition {
			t.Errorf("missing ObjectStore: %v", err)
		}
	})
}

func archive(t *testing.T, src *cnpgitest.Source, c cnpgitest.Cluster, path string, check *bool) error {
	t.Helper()
	_, err := walpb.NewWALClient(src.Plugin.Conn).Archive(tctx(t), &walpb.WALArchiveRequest{
		ClusterDefinition: c.JSON(t), SourceFileName: path, CheckEmptyWalArchive: check})
	return err
}

func testArchiveErrors(t *testing.T, src *cnpgitest.Source) {
	pgdata := t.TempDir()
	walDir := filepath.Join(pgdata, "pg_wal")
	if err := os.MkdirAll(filepath.Join(walDir, "archive_status"), 0o700); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(walDir, "000000010000000000000063")
	if err := os.WriteFile(seg, bytes.Repeat([]byte("wal"), 100000), 0o600); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	code := func(err error) codes.Code { return status.Code(err) }

	if err := archive(t, src, src.Cluster, seg, &yes); code(err) != codes.FailedPrecondition {
		t.Errorf("check on a used archive: %v, want FailedPrecondition", err)
	}
	fresh := src.Cluster
	fresh.Archive = map[string]string{"barmanObjectName": "store", "serverName": "fresh"}
	if err := archive(t, src, fresh, seg, &yes); err != nil {
		t.Errorf("check on an empty archive: %v", err)
	}
	// An older operator sends no decision: the marker file and the
	// annotation decide.
	if err := os.WriteFile(filepath.Join(pgdata, cnpgi.CheckEmptyWALArchiveFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := archive(t, src, src.Cluster, seg, nil); code(err) != codes.FailedPrecondition {
		t.Errorf("marker on a used archive: %v, want FailedPrecondition", err)
	}
	skip := src.Cluster
	skip.Annotations = map[string]string{cnpgi.SkipEmptyWALArchiveCheck: "enabled"}
	if err := archive(t, src, skip, seg, nil); err != nil {
		t.Errorf("annotation disables the check: %v", err)
	}
	if err := archive(t, src, src.Cluster, seg, &no); err != nil {
		t.Errorf("same content again: %v", err)
	}
	if err := os.WriteFile(seg, []byte("different content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := archive(t, src, src.Cluster, seg, &no); code(err) != codes.AlreadyExists {
		t.Errorf("different content under an archived name: %v, want AlreadyExists", err)
	}
	recoveryOnly := cnpgitest.Cluster{Name: "r", Namespace: "db", Recovery: map[string]string{"barmanObjectName": "store"}}
	if err := archive(t, src, recoveryOnly, seg, &no); err != nil {
		t.Errorf("cluster not archiving through the plugin: %v", err)
	}
	missing := src.Cluster
	missing.Archive = map[string]string{"barmanObjectName": "nope"}
	if err := archive(t, src, missing, seg, &no); code(err) != codes.FailedPrecondition {
		t.Errorf("missing ObjectStore: %v", err)
	}
	bad := filepath.Join(walDir, "notawal")
	_ = os.WriteFile(bad, []byte("x"), 0o600)
	if err := archive(t, src, src.Cluster, bad, &no); code(err) != codes.InvalidArgument {
		t.Errorf("bad name: %v", err)
	}
	if err := archive(t, src, src.Cluster, filepath.Join(walDir, "000000010000000000000064"), &no); code(err) != codes.Internal {
		t.Errorf("missing file: %v, want Internal", err)
	}
}

// backupObject is a Backup as CloudNativePG stores it after a plugin backup.
func backupObject(name, cluster, id, uid string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
		"metadata": map[string]any{"name": name, "namespace": "db"},
		"spec":     map[string]any{"cluster": map[string]any{"name": cluster}, "method": "plugin"},
		"status": map[string]any{"phase": "completed", "backupId": id, "method": "plugin",
			"pluginMetadata": map[string]any{"clusterUID": uid, "pluginName": cnpgi.PluginName}},
	}}
	return u
}

func testMaintenance(t *testing.T, src *cnpgitest.Source, first, second *backuppb.BackupResult) {
	if first == nil || second == nil {
		t.Fatal("the backups this scenario needs failed earlier")
	}
	ctx := tctx(t)
	c := src.Client
	var cl unstructured.Unstructured
	if err := json.Unmarshal(src.Cluster.JSON(t), &cl.Object); err != nil {
		t.Fatal(err)
	}
	cl.SetAPIVersion("postgresql.cnpg.io/v1")
	cl.SetKind("Cluster")
	cl.SetResourceVersion("")
	for _, o := range []client.Object{&cl,
		backupObject("b1", "pg", first.GetBackupId(), "uid-pg"),
		backupObject("b2", "pg", second.GetBackupId(), "uid-pg"),
		backupObject("other", "another", "20200101T000000", "uid-other"),
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	os := objectStore(t, src)
	os.Spec.RetentionPolicy = "7d"
	os.Spec.InstanceSidecarConfiguration.RetentionPolicyIntervalSeconds = 120
	if err := c.Update(ctx, os); err != nil {
		t.Fatal(err)
	}
	m := &instance.Maintenance{Client: c, Stores: &cnpgi.Stores{Client: c}, Window: &instance.Window{Client: c},
		Cluster: types.NamespacedName{Namespace: "db", Name: "pg"}, PodName: "pg-2",
		Now: func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }}
	objects := len(src.Objects(t, "pg"))
	// Only the primary's sidecar maintains the catalog; a replica's (or a
	// sidecar started before its PostgreSQL is primary) looks again after
	// the configured interval, not the 5-minute default.
	if wait, err := m.Cycle(ctx); err != nil || wait != 120*time.Second || len(src.Objects(t, "pg")) != objects {
		t.Fatalf("replica cycle: wait %v err %v, objects %d -> %d", wait, err, objects, len(src.Objects(t, "pg")))
	}
	m.PodName = "pg-1"
	wait, err := m.Cycle(ctx)
	if err != nil || wait != 120*time.Second {
		t.Fatalf("primary cycle: wait %v err %v", wait, err)
	}
	keys := strings.Join(src.Objects(t, "pg"), "\n")
	if strings.Contains(keys, first.GetBackupId()) || !strings.Contains(keys, second.GetBackupId()) {
		t.Fatalf("after retention (30 days later, 7d window) the store holds:\n%s", keys)
	}
	for _, w := range sortedWAL(t, src) {
		if w < second.GetBeginWal() {
			t.Errorf("WAL %s older than the kept backup's %s was not removed", w, second.GetBeginWal())
		}
	}
	end := time.Unix(second.GetStoppedAt(), 0)
	w := objectStore(t, src).Status.ServerRecoveryWindow["pg"]
	if w.FirstRecoverabilityPoint.Unix() != end.Unix() || w.LastSuccessfulBackupTime.Unix() != end.Unix() || w.LastFailedBackupTime == nil {
		t.Errorf("window after retention %+v, want both at %v and the failure kept", w, end)
	}
	for name, exists := range map[string]bool{"b1": false, "b2": true, "other": true} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("postgresql.cnpg.io/v1")
		u.SetKind("Backup")
		err := c.Get(ctx, types.NamespacedName{Namespace: "db", Name: name}, u)
		if (err == nil) != exists {
			t.Errorf("Backup %s: exists=%v, want %v (%v)", name, err == nil, exists, err)
		}
	}
}
