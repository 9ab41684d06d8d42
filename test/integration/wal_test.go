package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// TestWALArchiveAndReplay: PostgreSQL 15 archives through bcloud under
// pgbench load; a copy made from a base backup replays the archive
// through bcloud wal-restore with prefetch and reaches the same data; its
// promotion archives a timeline history file.
func TestWALArchiveAndReplay(t *testing.T) {
	bin := bcloudBin(t)
	store := testenv.NewDir(t)
	dest := "file://" + store
	archive := fmt.Sprintf("%s wal-archive --zstd --max-parallel 4 %s pg %%p", bin, dest)
	restore := fmt.Sprintf("%s wal-restore --max-parallel 4 %s pg %%f %%p", bin, dest)
	pg := testenv.Postgres(t, testenv.PGOptions{
		InitArgs: []string{"--wal-segsize=1"},
		Fast:     true,
		Conf: map[string]string{
			"archive_mode": "on", "archive_command": archive, "wal_level": "replica",
			"max_wal_size": "32MB", "min_wal_size": "8MB", "archive_timeout": "0",
		},
	})
	pg.Exec(t, "CREATE TABLE marks (id int primary key, note text)")
	pg.Pgbench(t, "-i", "-s", "3", "postgres")

	base := testenv.NewDir(t)
	pg.Run(t, "pg_basebackup", "-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-D", base, "-X", "none", "-c", "fast")

	pg.Pgbench(t, "-c", "4", "-j", "2", "-t", "600", "postgres")
	pg.Exec(t, "INSERT INTO marks SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
	pg.Exec(t, "CHECKPOINT")
	last := pg.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	pg.Exec(t, "SELECT pg_switch_wal()")
	waitFor(t, "the archiver to reach "+last, 2*time.Minute, func() bool {
		got := pg.QueryString(t, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
		return got >= last && len(got) == 24
	})
	if failed := pg.QueryString(t, "SELECT failed_count FROM pg_stat_archiver"); failed != "0" {
		t.Fatalf("archiver failed %s times:\n%s", failed, pg.Log())
	}
	archivedCount, _ := strconv.Atoi(pg.QueryString(t, "SELECT archived_count FROM pg_stat_archiver"))
	want := snapshot(t, pg)

	// Every archived segment is in the store exactly once, under its hash dir.
	segs := storedWAL(t, store, "pg")
	if len(segs) < archivedCount || archivedCount < 20 {
		t.Fatalf("store holds %d WAL objects, PostgreSQL archived %d (want >= 20)", len(segs), archivedCount)
	}
	for _, s := range segs {
		name := strings.TrimSuffix(filepath.Base(s), ".zst")
		if len(name) >= 24 && !strings.HasSuffix(s, ".history.zst") {
			if wantDir := strings.ToUpper(name[:16]); filepath.Base(filepath.Dir(s)) != wantDir {
				t.Errorf("%s is not under wals/%s/", s, wantDir)
			}
		}
	}
	pg.Stop(t)

	// Replay the whole archive on a copy from the base backup.
	_ = os.WriteFile(filepath.Join(base, "recovery.signal"), nil, 0o600)
	replica := testenv.Postgres(t, testenv.PGOptions{
		DataDir: base,
		Conf: map[string]string{
			"restore_command": restore, "recovery_target_timeline": "latest",
			"archive_mode": "on", "archive_command": archive,
		},
	})
	replica.WaitRecovered(t, 3*time.Minute)
	if got := snapshot(t, replica); got != want {
		t.Fatalf("replayed copy differs:\n got %s\nwant %s", got, want)
	}
	// Promotion switched to timeline 2; its history file is archived
	// directly under wals/.
	replica.Exec(t, "SELECT pg_switch_wal()")
	waitFor(t, "00000002.history in the store", time.Minute, func() bool {
		_, err := os.Stat(filepath.Join(store, "pg", "wals", "00000002.history.zst"))
		return err == nil
	})
}

// snapshot summarises the data a restore must reproduce.
func snapshot(t *testing.T, pg *testenv.PG) string {
	return pg.QueryString(t, `SELECT concat_ws(' ',
		(SELECT count(*) FROM pgbench_history),
		(SELECT sum(abalance) FROM pgbench_accounts),
		(SELECT md5(string_agg(id::text || note, ',' ORDER BY id)) FROM marks),
		(SELECT md5(string_agg(aid::text || ':' || delta::text, ',' ORDER BY aid, mtime, delta)) FROM pgbench_history))`)
}

// storedWAL lists the WAL object paths of a server in a file:// store.
func storedWAL(t *testing.T, store, server string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(store, server, "wals")
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}
