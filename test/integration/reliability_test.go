package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/testenv"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

// TestNoWALLostUnderFaults: PostgreSQL archives through bcloud under
// pgbench load while the path to the store resets connections, answers
// 503 SlowDown, goes black, and refuses connections for 30 s. Afterwards
// every segment PostgreSQL archived is in the store exactly once and
// byte-identical, the archive has no gap, and a replay of it reproduces
// the final data.
func TestNoWALLostUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("minutes-long fault test; run without -short")
	}
	bin := bcloudBin(t)
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	proxy := testenv.NewFaultProxy(t, strings.TrimPrefix(srv.Endpoint, "http://"))
	slow := testenv.NewHTTPFaults(t, "http://"+proxy.Addr)
	dest := "s3://" + bucket + "/faults"
	copies := testenv.NewDir(t)
	archive := fmt.Sprintf("%s wal-archive --read-timeout 5 --endpoint-url %s --gzip %s pg %%p && cp %%p %s/%%f", bin, slow.URL, dest, copies)
	env := s3Env(srv)
	pg := testenv.Postgres(t, testenv.PGOptions{
		InitArgs: []string{"--wal-segsize=1"},
		Fast:     true,
		Env:      env,
		Conf: map[string]string{
			"archive_mode": "on", "archive_command": archive, "wal_level": "replica",
			"max_wal_size": "64MB", "min_wal_size": "16MB",
		},
	})
	pg.Exec(t, "CREATE TABLE marks (id int primary key, note text)")
	pg.Exec(t, "INSERT INTO marks SELECT g, md5(g::text) FROM generate_series(1, 100) g")
	pg.Pgbench(t, "-i", "-s", "2", "postgres")
	base := testenv.NewDir(t)
	pg.Run(t, "pg_basebackup", "-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-D", base, "-X", "none", "-c", "fast")

	// Load runs in the background while the faults come and go.
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		pg.Pgbench(t, "-c", "2", "-j", "2", "-T", "75", "postgres")
	}()
	phases := []struct {
		name string
		on   func()
		dur  time.Duration
	}{
		{"connections reset mid-upload", func() { proxy.ResetAfter(24 << 10) }, 12 * time.Second},
		{"503 SlowDown", func() { slow.Fail(-1, http.StatusServiceUnavailable) }, 8 * time.Second},
		{"store stops answering", func() { proxy.SetBlackhole(true) }, 10 * time.Second},
		{"store down", func() { proxy.SetDown(true) }, 30 * time.Second},
	}
	for _, ph := range phases {
		ph.on()
		t.Logf("fault: %s for %s", ph.name, ph.dur)
		time.Sleep(ph.dur)
		proxy.Heal()
		slow.Fail(0, 0)
		time.Sleep(3 * time.Second)
	}
	<-loadDone
	last := pg.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	pg.Exec(t, "SELECT pg_switch_wal()")
	waitFor(t, "the archiver to catch up to "+last, 4*time.Minute, func() bool {
		got := pg.QueryString(t, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
		return len(got) == 24 && got >= last
	})
	failed, _ := strconv.Atoi(pg.QueryString(t, "SELECT failed_count FROM pg_stat_archiver"))
	if failed == 0 || proxy.Resets.Load() == 0 || slow.Injected.Load() == 0 {
		t.Fatalf("faults did not bite: %d failed archive attempts, %d resets, %d injected 503s", failed, proxy.Resets.Load(), slow.Injected.Load())
	}
	want := snapshot(t, pg)
	pg.Stop(t)

	// Every locally kept copy is in the store exactly once, byte-identical.
	b := openS3(t, srv, dest)
	stored := map[string][]string{}
	_ = b.List(t.Context(), "pg/wals/", func(o storage.ObjectInfo) error {
		name := strings.TrimSuffix(filepath.Base(o.Key), ".gz")
		stored[name] = append(stored[name], o.Key)
		return nil
	})
	entries, _ := os.ReadDir(copies)
	var segs []string
	for _, e := range entries {
		name := e.Name()
		if len(stored[name]) != 1 {
			t.Errorf("%s stored %d times: %v", name, len(stored[name]), stored[name])
			continue
		}
		local, _ := os.ReadFile(filepath.Join(copies, name))
		got, err := readWALObject(b, stored[name][0])
		if err != nil {
			t.Errorf("read %s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, local) {
			t.Errorf("%s in the store differs from what PostgreSQL archived", name)
		}
		if len(name) == 24 {
			segs = append(segs, name)
		}
	}
	// No gap between the first and the last archived segment.
	sort.Strings(segs)
	for i := 1; i < len(segs); i++ {
		prev, _ := wal.ParseSegment(segs[i-1])
		if next := prev.Next(1 << 20).Name(); next != segs[i] {
			t.Fatalf("gap in the archive: %s follows %s (want %s)", segs[i], segs[i-1], next)
		}
	}
	t.Logf("%d WAL files archived through %d failed attempts, %d resets, %d injected 503s; keys e.g. %s",
		len(entries), failed, proxy.Resets.Load(), slow.Injected.Load(), layout.WALKey("pg", segs[0], ".gz"))

	// A replay of the archive reproduces the final data.
	_ = os.WriteFile(filepath.Join(base, "recovery.signal"), nil, 0o600)
	restore := fmt.Sprintf("%s wal-restore --endpoint-url %s %s pg %%f %%p", bin, srv.Endpoint, dest)
	replica := testenv.Postgres(t, testenv.PGOptions{DataDir: base, Env: env, Conf: map[string]string{"restore_command": restore}})
	replica.WaitRecovered(t, 3*time.Minute)
	if got := snapshot(t, replica); got != want {
		t.Fatalf("replayed data differs:\n got %s\nwant %s", got, want)
	}
}

// readWALObject downloads and decompresses one archived WAL object.
func readWALObject(b storage.Bucket, key string) ([]byte, error) {
	algo, _ := compress.FromWALName(filepath.Base(key))
	rc, err := b.Get(context.Background(), key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	dr, err := compress.NewReader(rc, algo)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	return io.ReadAll(dr)
}
