package cnpgitest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/instance"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// Source is a PostgreSQL 15 server that archives through the instance
// sidecar into an S3 ObjectStore on versitygw: PostgreSQL's
// archive_command runs the fake instance manager, which calls the
// sidecar's WAL service over its unix socket. The sidecar runs in the
// test process against a fake API server.
type Source struct {
	PG          *testenv.PG
	GW          testenv.S3Server
	Bucket      string
	Cluster     Cluster
	ClusterFile string
	Client      client.WithWatch
	Store       *apiv1.ObjectStore
	Secret      *corev1.Secret
	Plugin      *Plugin
	Socket      string
	Bin         string
	IMLog       string
	SpoolDir    string
	PluginDir   string
}

// SourceOptions tune NewSource.
type SourceOptions struct {
	// Store changes the ObjectStore before it is created.
	Store func(*apiv1.ObjectStore)
	// InitArgs are extra initdb arguments.
	InitArgs []string
}

// NewSource starts versitygw, PostgreSQL and the instance sidecar.
func NewSource(t *testing.T, o SourceOptions) *Source {
	t.Helper()
	s := &Source{GW: testenv.VersityGW(t)}
	s.Bucket = s.GW.NewBucket(t)
	s.Cluster = Cluster{Name: "pg", Namespace: "db", UID: "uid-pg", CurrentPrimary: "pg-1",
		Archive: map[string]string{"barmanObjectName": "store"}}
	s.Secret = Secret("db", "minio", map[string]string{"ACCESS_KEY_ID": s.GW.AccessKey,
		"ACCESS_SECRET_KEY": s.GW.Secret, "REGION": s.GW.Region})
	s.Store = S3ObjectStore("db", "store", "s3://"+s.Bucket+"/cnpg", s.GW.Endpoint, "minio")
	s.Store.Spec.Configuration.AWS.RegionReference = Ref("minio", "REGION")
	s.Store.Spec.Configuration.Wal = &apiv1.WalBackupConfiguration{Compression: apiv1.CompressionTypeGzip, MaxParallel: 3}
	s.Store.Spec.Configuration.Data = &apiv1.DataBackupConfiguration{Compression: apiv1.CompressionTypeGzip}
	if o.Store != nil {
		o.Store(s.Store)
	}
	s.Client = FakeClient(t, s.Store, s.Secret)

	binDir := testenv.NewDir(t)
	s.Bin = InstallBinary(t, binDir)
	s.ClusterFile = filepath.Join(binDir, "cluster.json")
	s.IMLog = filepath.Join(binDir, "im.log")
	s.WriteCluster(t, s.Cluster)
	s.PluginDir = testenv.NewDir(t)
	s.Socket = filepath.Join(s.PluginDir, cnpgi.PluginName)
	s.SpoolDir = filepath.Join(t.TempDir(), "spool")

	s.PG = testenv.Postgres(t, testenv.PGOptions{
		Fast:     true,
		InitArgs: o.InitArgs,
		Conf: map[string]string{"archive_mode": "on", "wal_level": "replica",
			"archive_command": s.Bin + " wal-archive %p"},
		Env: IMEnv(s.Socket, s.ClusterFile, s.IMLog),
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		errc <- instance.Start(ctx, instance.Options{
			Client: s.Client, Namespace: "db", ClusterName: "pg", PodName: "pg-1",
			ConnInfo: s.PG.ConnString(), SpoolDir: s.SpoolDir, PluginPath: s.PluginDir,
			CertDir: t.TempDir(), NoMaintenance: true, MemoryLimit: -1,
			Ready: func(net.Addr) {
				// PostgreSQL's commands run as postgres.
				_ = os.Chmod(s.Socket, 0o777)
				close(ready)
			},
		})
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("instance sidecar: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("instance sidecar did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("instance sidecar: %v", err)
		}
	})
	p, err := Load(ctx, DialUnix(t, s.Socket))
	if err != nil {
		t.Fatal(err)
	}
	s.Plugin = p
	return s
}

// WriteCluster sets the Cluster JSON the fake instance manager sends.
func (s *Source) WriteCluster(t testing.TB, c Cluster) {
	t.Helper()
	if err := os.WriteFile(s.ClusterFile, c.JSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
}

// SwitchWAL inserts rows and switches WAL n times, and waits until
// PostgreSQL archived every finished segment.
func (s *Source) SwitchWAL(t testing.TB, n int) {
	t.Helper()
	s.PG.Exec(t, "CREATE TABLE IF NOT EXISTS t (i int, at timestamptz default now())")
	before := s.archived(t)
	for range n {
		// Separate statements: in one query string the switch would run
		// before the insert commits, leaving the commit in the next segment.
		s.PG.Exec(t, "INSERT INTO t(i) SELECT generate_series(1, 1000)")
		s.PG.Exec(t, "SELECT pg_switch_wal()")
	}
	s.WaitArchived(t, before+n)
}

// WaitArchived waits until pg_stat_archiver counts want archived files.
func (s *Source) WaitArchived(t testing.TB, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if s.archived(t) >= want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	im, _ := os.ReadFile(s.IMLog)
	t.Fatalf("PostgreSQL archived %d files, want %d; failures: %s\ninstance manager calls:\n%s\nserver log:\n%s",
		s.archived(t), want, s.PG.QueryString(t, "SELECT failed_count || ' last ' || coalesce(last_failed_wal, '') FROM pg_stat_archiver"), im, s.PG.Log())
}

func (s *Source) archived(t testing.TB) int {
	t.Helper()
	n, err := strconv.Atoi(s.PG.QueryString(t, "SELECT archived_count FROM pg_stat_archiver"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Objects lists the keys under the ObjectStore's destination, from the
// versitygw backend directory.
func (s *Source) Objects(t testing.TB, server string) []string {
	t.Helper()
	root := filepath.Join(s.GW.Root, s.Bucket, "cnpg", server)
	var keys []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			keys = append(keys, rel)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return keys
}

// ArchivedWAL returns the WAL object keys of server, relative to it.
func (s *Source) ArchivedWAL(t testing.TB, server string) []string {
	t.Helper()
	var out []string
	for _, k := range s.Objects(t, server) {
		if strings.HasPrefix(k, "wals/") {
			out = append(out, k)
		}
	}
	return out
}

// String describes the source for failure messages.
func (s *Source) String() string {
	return fmt.Sprintf("source %s bucket %s", s.PG.DataDir, s.Bucket)
}
