package restore_test

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	backuppb "github.com/cloudnative-pg/cnpg-i/pkg/backup"
	"github.com/cloudnative-pg/cnpg-i/pkg/identity"
	jobpb "github.com/cloudnative-pg/cnpg-i/pkg/restore/job"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bcloud-dev/bcloud/internal/cnpgi/cnpgitest"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/restore"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func TestMain(m *testing.M) {
	cnpgitest.Main(m, func(ctx context.Context, c client.Client, pluginPath string) error {
		return restore.Start(ctx, restore.Options{Client: c, PodName: os.Getenv("POD_NAME"), PGData: os.Getenv("PGDATA"),
			SpoolDir: os.Getenv("SPOOL_DIRECTORY"), PluginPath: pluginPath, CertDir: pluginPath})
	})
}

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

const upstreamRestoreConfig = "recovery_target_action = promote\n" +
	"restore_command = '/controller/manager wal-restore --log-destination /controller/log/postgres.json %f %p'\n"

// TestRecoveryJob backs up a PostgreSQL 15 server through the instance
// sidecar, then restores it as CloudNativePG's full-recovery Job does:
// RestoreJobHooks.Restore in the restore sidecar (its own process, as the
// postgres user), then PostgreSQL replays the archived WAL through the
// sidecar's WAL service until it promotes.
func TestRecoveryJob(t *testing.T) {
	src := cnpgitest.NewSource(t, cnpgitest.SourceOptions{})
	src.SwitchWAL(t, 2)
	first := backup(t, src, "b1")
	time.Sleep(time.Second)
	src.PG.Exec(t, "INSERT INTO t(i) SELECT -generate_series(1, 500)")
	second := backup(t, src, "b2")
	src.PG.Exec(t, "INSERT INTO t(i) SELECT 100000 + generate_series(1, 777)")
	src.SwitchWAL(t, 1)
	rows := src.PG.QueryString(t, "SELECT count(*) FROM t")

	pluginDir := testenv.NewDir(t)
	fixture := filepath.Join(pluginDir, "fixture.json")
	cnpgitest.WriteFixture(t, fixture, src.Store, src.Secret)
	base := testenv.NewDir(t)
	pgdata := filepath.Join(base, "pgdata")
	// What a failed earlier attempt left behind.
	if err := os.MkdirAll(filepath.Join(pgdata, "base", "1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pgdata, "base", "1", "junk"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chownTree(base); err != nil {
		t.Fatal(err)
	}
	spool := testenv.NewDir(t)
	side := cnpgitest.StartSidecar(t, src.Bin, pluginDir, fixture, true,
		"POD_NAME=copy-1-full-recovery", "PGDATA="+pgdata, "SPOOL_DIRECTORY="+spool, "NAMESPACE=db")
	p, err := cnpgitest.Load(tctx(t), cnpgitest.DialUnix(t, side.Socket))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Services[identity.PluginCapability_Service_TYPE_RESTORE_JOB] || !p.Services[identity.PluginCapability_Service_TYPE_WAL_SERVICE] ||
		len(p.Services) != 2 || p.Restore.GetCapabilities()[0].GetKind() != jobpb.RestoreJobHooksCapability_KIND_RESTORE {
		t.Fatalf("restore sidecar capabilities %v %v", p.Services, p.Restore)
	}
	jobs := jobpb.NewRestoreJobHooksClient(p.Conn)
	yes := true
	target := cnpgitest.Cluster{Name: "copy", Namespace: "db", UID: "uid-copy", TypeMeta: true,
		Recovery: map[string]string{"barmanObjectName": "store", "serverName": "pg"},
		Archive:  map[string]string{"barmanObjectName": "store"}}

	t.Run("errors", func(t *testing.T) {
		// The new cluster would archive into the source's own archive.
		clash := target
		clash.Archive = map[string]string{"barmanObjectName": "store", "serverName": "pg"}
		_, err := jobs.Restore(tctx(t), &jobpb.RestoreRequest{ClusterDefinition: clash.JSON(t), CheckEmptyWalArchive: &yes})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "not empty") {
			t.Errorf("restore into a used archive: %v", err)
		}
		early := target
		early.RecoveryTarget = map[string]any{"targetTime": "2001-01-01 00:00:00+00"}
		_, err = jobs.Restore(tctx(t), &jobpb.RestoreRequest{ClusterDefinition: early.JSON(t), CheckEmptyWalArchive: &yes})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no completed backup") {
			t.Errorf("target before every backup: %v", err)
		}
		if _, err := os.Stat(filepath.Join(pgdata, "base", "1", "junk")); err != nil {
			t.Errorf("a refused restore touched PGDATA: %v", err)
		}
	})

	t.Run("select by backupID", func(t *testing.T) {
		pick := target
		pick.RecoveryTarget = map[string]any{"backupID": first.GetBackupId()}
		if _, err := jobs.Restore(tctx(t), &jobpb.RestoreRequest{ClusterDefinition: pick.JSON(t), CheckEmptyWalArchive: &yes}); err != nil {
			t.Fatal(err)
		}
		label, _ := os.ReadFile(filepath.Join(pgdata, "backup_label"))
		if !strings.Contains(string(label), "Barman backup cloud "+first.GetBackupId()) {
			t.Fatalf("backup_label of the wrong backup:\n%s", label)
		}
		if _, err := os.Stat(filepath.Join(pgdata, "base", "1", "junk")); !os.IsNotExist(err) {
			t.Error("PGDATA was not cleaned before extracting")
		}
	})

	t.Run("recover", func(t *testing.T) {
		res, err := jobs.Restore(tctx(t), &jobpb.RestoreRequest{ClusterDefinition: target.JSON(t), CheckEmptyWalArchive: &yes})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetRestoreConfig() != upstreamRestoreConfig || len(res.GetEnvs()) != 0 {
			t.Errorf("restore config %q envs %v", res.GetRestoreConfig(), res.GetEnvs())
		}
		label, _ := os.ReadFile(filepath.Join(pgdata, "backup_label"))
		if !strings.Contains(string(label), "Barman backup cloud "+second.GetBackupId()) {
			t.Fatalf("the latest backup was not chosen:\n%s", label)
		}
		// PostgreSQL's restore_command goes through the instance manager
		// to the restore sidecar, as with CloudNativePG.
		clusterFile := filepath.Join(pluginDir, "target.json")
		boot := target
		boot.TypeMeta = false
		if err := os.WriteFile(clusterFile, boot.JSON(t), 0o644); err != nil {
			t.Fatal(err)
		}
		imLog := filepath.Join(pluginDir, "im.log")
		if err := os.WriteFile(filepath.Join(pgdata, "recovery.signal"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		pg := testenv.Postgres(t, testenv.PGOptions{DataDir: pgdata, Fast: true,
			Conf: map[string]string{"restore_command": src.Bin + " wal-restore %f %p", "recovery_target_action": "promote",
				"archive_mode": "off"},
			Env: cnpgitest.IMEnv(side.Socket, clusterFile, imLog)})
		pg.WaitRecovered(t, 90*time.Second)
		if got := pg.QueryString(t, "SELECT count(*) FROM t"); got != rows {
			log, _ := os.ReadFile(imLog)
			t.Fatalf("restored %s rows, the source has %s\ninstance manager calls:\n%s", got, rows, log)
		}
		log, _ := os.ReadFile(imLog)
		if !strings.Contains(string(log), "restore 00000002.history NotFound") || strings.Count(string(log), " OK") < 2 {
			t.Errorf("unexpected restore calls:\n%s", log)
		}
		if n, _ := strconv.Atoi(pg.QueryString(t, "SELECT count(*) FROM t WHERE i > 100000")); n != 777 {
			t.Errorf("rows written after the last backup: %d, want 777", n)
		}
	})
}

func backup(t *testing.T, src *cnpgitest.Source, name string) *backuppb.BackupResult {
	t.Helper()
	res, err := backuppb.NewBackupClient(src.Plugin.Conn).Backup(tctx(t), &backuppb.BackupRequest{
		ClusterDefinition: src.Cluster.JSON(t), BackupDefinition: cnpgitest.BackupJSON(t, src.Cluster, name)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// chownTree gives dir to the postgres user, as the pod's fsGroup would.
func chownTree(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
