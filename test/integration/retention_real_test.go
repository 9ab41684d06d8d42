package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// TestRetentionAndVerifyOnRealBackups: three real backups of a PostgreSQL
// 15 under a file:// store; verify passes; backup-delete with REDUNDANCY 2
// removes the oldest and the WAL only it needed; verify still passes and
// every surviving backup restores to the latest point and starts with the
// final data. Then the archive is damaged three ways and verify, restore
// and wal-restore each name the broken object.
func TestRetentionAndVerifyOnRealBackups(t *testing.T) {
	bin := bcloudBin(t)
	store := testenv.NewDir(t)
	dest := "file://" + store
	pg, _ := bkSource(t, bin, dest, nil)
	env := bkPGEnv(pg)
	var ids []string
	for stage := 1; stage <= 3; stage++ {
		bkInsert(t, pg, stage, stage*1000, 500)
		out := bkRun(t, env, bin, "backup", "--immediate-checkpoint", "--gzip", dest, "pg")
		_ = out
		time.Sleep(1100 * time.Millisecond) // backup IDs have a one-second resolution
	}
	bkInsert(t, pg, 4, 4000, 500)
	bkWaitArchived(t, pg)
	final := bkSnapshot(t, pg)
	ids = append(ids, mustDirs(t, filepath.Join(store, "pg", "base"))...)
	if len(ids) != 3 {
		t.Fatalf("want 3 backups, store has %v", ids)
	}
	if code, out := exitCode(t, nil, bin, "verify", dest, "pg"); code != 0 {
		t.Fatalf("verify of a healthy archive: exit %d\n%s", code, out)
	}
	walBefore := len(storedWAL(t, store, "pg"))
	bkRun(t, nil, bin, "backup-delete", "-r", "REDUNDANCY 2", dest, "pg")
	left := mustDirs(t, filepath.Join(store, "pg", "base"))
	if strings.Join(left, ",") != strings.Join(ids[1:], ",") {
		t.Fatalf("after REDUNDANCY 2: backups %v, want %v", left, ids[1:])
	}
	walAfter := len(storedWAL(t, store, "pg"))
	if walAfter >= walBefore {
		t.Fatalf("no WAL freed: %d objects before, %d after", walBefore, walAfter)
	}
	out := run(t, nil, bin, "verify", dest, "pg")
	t.Logf("after retention (%d -> %d WAL objects):\n%s", walBefore, walAfter, out)
	for _, id := range left {
		dir := testenv.NewDir(t)
		ts := testenv.NewDir(t)
		bkRun(t, nil, bin, "restore", "--tablespace", "bk_ts:"+ts, "--recovery-target-latest", dest, "pg", id, dir)
		restored := bkStartRestored(t, dir, nil)
		if got := bkSnapshot(t, restored); got != final {
			t.Fatalf("backup %s restored to latest holds %+v, want %+v", id, got, final)
		}
		bkAmcheck(t, restored)
		restored.Stop(t)
	}
	pg.Stop(t)

	// Damage: a WAL segment in the middle disappears.
	segs := storedWAL(t, store, "pg")
	var plain []string
	for _, s := range segs {
		if len(filepath.Base(s)) == 24 {
			plain = append(plain, s)
		}
	}
	sort.Strings(plain)
	victim := plain[len(plain)/2]
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	code, vout := exitCode(t, nil, bin, "verify", dest, "pg")
	if code != 1 || !strings.Contains(vout, filepath.Base(victim)) {
		t.Fatalf("verify with %s deleted: exit %d, output:\n%s", filepath.Base(victim), code, vout)
	}
	// Damage: a byte flipped in the middle of a stored tar.
	tarKey := filepath.Join(store, "pg", "base", left[0], "data.tar.gz")
	data, err := os.ReadFile(tarKey)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x5A
	if err := os.WriteFile(tarKey, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rdir := testenv.NewDir(t)
	code, rout := exitCode(t, nil, bin, "restore", "--tablespace", "bk_ts:"+testenv.NewDir(t), dest, "pg", left[0], rdir)
	if code == 0 || !strings.Contains(rout, "data.tar.gz") {
		t.Fatalf("restore of a corrupted tar: exit %d, output:\n%s", code, rout)
	}
	code, vout = exitCode(t, nil, bin, "verify", dest, "pg", left[0])
	if code != 1 || !strings.Contains(vout, "data.tar.gz") {
		t.Fatalf("verify of a corrupted tar: exit %d, output:\n%s", code, vout)
	}
	// Damage: a compressed WAL object truncated.
	trunc := plain[len(plain)-2]
	wdata, _ := os.ReadFile(trunc)
	_ = os.WriteFile(trunc, wdata[:len(wdata)/2], 0o600)
	name := strings.TrimSuffix(filepath.Base(trunc), filepath.Ext(trunc))
	if !strings.HasSuffix(trunc, ".gz") && !strings.HasSuffix(trunc, ".zst") {
		name = filepath.Base(trunc)
	}
	wdest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	code, wout := exitCode(t, nil, bin, "wal-restore", dest, "pg", name, wdest)
	if code == 0 || code == 1 || !strings.Contains(wout, filepath.Base(trunc)) {
		t.Fatalf("wal-restore of a truncated object: exit %d, output:\n%s", code, wout)
	}
	if _, err := os.Stat(wdest); err == nil {
		t.Fatal("wal-restore handed PostgreSQL a truncated file")
	}
	t.Logf("damage detected:\n%s\n%s\n%s", strings.TrimSpace(vout), strings.TrimSpace(rout), strings.TrimSpace(wout))
}

func mustDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}
