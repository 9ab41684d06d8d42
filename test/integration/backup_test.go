package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// bkState is what a recovery must reproduce: the row count and checksum
// of the marks table.
type bkState struct {
	rows, sum string
}

func bkSnapshot(t *testing.T, pg *testenv.PG) bkState {
	t.Helper()
	return bkState{
		rows: pg.QueryString(t, "SELECT count(*) FROM bk_marks"),
		sum:  pg.QueryString(t, "SELECT coalesce(md5(string_agg(m::text, ',' ORDER BY id)), '') FROM bk_marks m"),
	}
}

// bkAsPostgres returns a command running name as the postgres user when
// the tests run as root, as PostgreSQL's own commands run.
func bkAsPostgres(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = os.TempDir()
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// bkRun runs a command as postgres and fails the test on error.
func bkRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := bkAsPostgres(ctx, env, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// bkPGEnv is the libpq environment reaching pg.
func bkPGEnv(pg *testenv.PG) []string {
	return []string{"PGHOST=" + pg.SocketDir, "PGPORT=" + strconv.Itoa(pg.Port), "PGUSER=postgres"}
}

// bkSource starts a PostgreSQL 15 archiving into dest (a bcloud URL) as
// server "pg", with 1 MiB WAL segments, and a tablespace.
func bkSource(t *testing.T, bin, dest string, env []string) (*testenv.PG, string) {
	t.Helper()
	archive := fmt.Sprintf("%s wal-archive %s pg %%p", bin, dest)
	pg := testenv.Postgres(t, testenv.PGOptions{
		InitArgs: []string{"--wal-segsize=1"},
		Fast:     true,
		Env:      env,
		Conf: map[string]string{
			"archive_mode": "on", "archive_command": archive, "wal_level": "replica",
			"max_wal_size": "64MB", "archive_timeout": "0",
		},
	})
	ts := testenv.NewDir(t)
	pg.Exec(t, fmt.Sprintf("CREATE TABLESPACE bk_ts LOCATION '%s'", ts))
	pg.Exec(t, "CREATE TABLE bk_marks (id int PRIMARY KEY, note text, at timestamptz DEFAULT clock_timestamp()) TABLESPACE bk_ts")
	pg.Exec(t, "CREATE INDEX bk_marks_note ON bk_marks (note) TABLESPACE bk_ts")
	pg.Exec(t, "CREATE TABLE bk_xids (stage int, xid text)")
	return pg, ts
}

// bkInsert adds n rows to bk_marks from id from, in one transaction, and
// returns that transaction's id.
func bkInsert(t *testing.T, pg *testenv.PG, stage, from, n int) string {
	t.Helper()
	pg.Exec(t, fmt.Sprintf("INSERT INTO bk_marks (id, note) SELECT g, md5(g::text) FROM generate_series(%d, %d) g; "+
		"INSERT INTO bk_xids VALUES (%d, pg_current_xact_id()::text)", from, from+n-1, stage))
	return pg.QueryString(t, fmt.Sprintf("SELECT xid FROM bk_xids WHERE stage = %d", stage))
}

// bkWaitArchived switches WAL and waits until the segment holding the
// current position is archived.
func bkWaitArchived(t *testing.T, pg *testenv.PG) {
	t.Helper()
	last := pg.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	pg.Exec(t, "SELECT pg_switch_wal()")
	waitFor(t, "the archiver to reach "+last, 2*time.Minute, func() bool {
		got := pg.QueryString(t, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
		return len(got) == 24 && got >= last
	})
}

// bkStartRestored starts PostgreSQL on a restored data directory with
// archiving off (so that promotions do not write into the source's
// archive) and waits for the end of recovery.
func bkStartRestored(t *testing.T, dir string, env []string) *testenv.PG {
	t.Helper()
	pg := testenv.Postgres(t, testenv.PGOptions{DataDir: dir, Env: env, Fast: true,
		Conf: map[string]string{"archive_mode": "off"}})
	pg.WaitRecovered(t, 3*time.Minute)
	if !pg.Running() {
		t.Fatalf("restored PostgreSQL stopped during recovery:\n%s", pg.Log())
	}
	return pg
}

// bkAmcheck verifies every B-tree index of the database with amcheck.
func bkAmcheck(t *testing.T, pg *testenv.PG) {
	t.Helper()
	pg.Exec(t, "CREATE EXTENSION IF NOT EXISTS amcheck")
	n := pg.QueryString(t, "SELECT count(bt_index_check(c.oid, true)) FROM pg_index i "+
		"JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "+
		"WHERE am.amname = 'btree' AND c.relpersistence <> 't' AND i.indisready AND i.indisvalid")
	if v, _ := strconv.Atoi(n); v < 10 {
		t.Fatalf("amcheck checked %s indexes, want at least 10", n)
	}
}

// bkPgbench starts a pgbench load in the background; stop waits for it.
func bkPgbench(t *testing.T, pg *testenv.PG, seconds int) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+60)*time.Second)
	cmd := bkAsPostgres(ctx, bkPGEnv(pg), "/usr/lib/postgresql/15/bin/pgbench",
		"-c", "2", "-j", "2", "-T", strconv.Itoa(seconds), "postgres")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start pgbench: %v", err)
	}
	return func() {
		defer cancel()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("pgbench: %v\n%s", err, out)
		}
	}
}

// TestBackupRestorePITR takes a backup with a tablespace under pgbench
// load, writes marked stages afterwards and restores the backup to each
// recovery target kind; each restored server must hold exactly the rows
// of its target and pass amcheck.
func TestBackupRestorePITR(t *testing.T) {
	bin := bcloudBin(t)
	store := testenv.NewDir(t)
	dest := "file://" + store
	pg, _ := bkSource(t, bin, dest, nil)
	pg.Pgbench(t, "-i", "-s", "2", "postgres")
	bkInsert(t, pg, 0, 1, 1000)
	want := map[string]bkState{}

	stop := bkPgbench(t, pg, 4)
	out := bkRun(t, bkPGEnv(pg), bin, "backup", "-v", "--immediate-checkpoint", "--gzip", "-J", "3", "-S", "2MB", "--name", "pitr", dest, "pg")
	stop()
	t.Logf("backup output:\n%s", out)
	want["immediate"] = bkSnapshot(t, pg)

	// Stage 1: a transaction whose xid is the target.
	xid := bkInsert(t, pg, 1, 1001, 500)
	want["xid"] = bkSnapshot(t, pg)
	// Stage 2: a restore point.
	bkInsert(t, pg, 2, 1501, 500)
	pg.Exec(t, "SELECT pg_create_restore_point('bk_rp2')")
	want["name"] = bkSnapshot(t, pg)
	// Stage 3: a time.
	bkInsert(t, pg, 3, 2001, 500)
	targetTime := pg.QueryString(t, "SELECT clock_timestamp()::text")
	want["time"] = bkSnapshot(t, pg)
	time.Sleep(20 * time.Millisecond)
	// Stage 4: an LSN.
	bkInsert(t, pg, 4, 2501, 500)
	targetLSN := pg.QueryString(t, "SELECT pg_current_wal_insert_lsn()::text")
	want["lsn"] = bkSnapshot(t, pg)
	// Stage 5: the end of the archive.
	bkInsert(t, pg, 5, 3001, 500)
	want["latest"] = bkSnapshot(t, pg)
	bkWaitArchived(t, pg)

	cases := []struct {
		kind string
		args []string
	}{
		{"immediate", []string{"--recovery-target-immediate"}},
		{"xid", []string{"--recovery-target-xid", xid}},
		{"name", []string{"--recovery-target-name", "bk_rp2"}},
		{"time", []string{"--recovery-target-time", targetTime}},
		{"lsn", []string{"--recovery-target-lsn", targetLSN}},
		{"latest", []string{"--recovery-target-latest"}},
	}
	for i, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			dir, ts := testenv.NewDir(t), testenv.NewDir(t)
			id := "pitr"
			if i%2 == 1 {
				id = "auto" // chosen by the recovery target, or the newest
			}
			args := append([]string{"restore", "-J", "3", "--tablespace", "bk_ts:" + ts}, c.args...)
			bkRun(t, nil, bin, append(args, dest, "pg", id, dir)...)
			if _, err := os.Stat(filepath.Join(dir, "recovery.signal")); err != nil {
				t.Fatalf("no recovery.signal: %v", err)
			}
			link, err := os.Readlink(filepath.Join(dir, "pg_tblspc", strings.TrimSpace(pg.QueryString(t, "SELECT oid FROM pg_tablespace WHERE spcname = 'bk_ts'"))))
			if err != nil || link != ts {
				t.Fatalf("tablespace link = %q, %v; want %s", link, err, ts)
			}
			r := bkStartRestored(t, dir, nil)
			if got := bkSnapshot(t, r); got != want[c.kind] {
				t.Fatalf("restored to %s: rows %s checksum %s, want rows %s checksum %s\n%s",
					c.kind, got.rows, got.sum, want[c.kind].rows, want[c.kind].sum, r.Log())
			}
			if got := r.QueryString(t, "SELECT count(*) FROM pgbench_accounts"); got != "200000" {
				t.Fatalf("pgbench_accounts has %s rows, want 200000", got)
			}
			bkAmcheck(t, r)
		})
	}
}

// TestBackupKilled kills bcloud backup with SIGKILL while it uploads: the
// store must hold no backup.info for it, PostgreSQL must leave backup
// mode, and the next backup must succeed. Then a backup that fails (an
// unreadable file) is recorded as FAILED, exits 1 and is not listed as
// usable.
func TestBackupKilled(t *testing.T) {
	bin := bcloudBin(t)
	store := testenv.NewDir(t)
	dest := "file://" + store
	pg, _ := bkSource(t, bin, dest, nil)
	pg.Pgbench(t, "-i", "-s", "8", "postgres")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := bkAsPostgres(ctx, bkPGEnv(pg), bin, "backup", "--immediate-checkpoint", "--bzip2", "-J", "1", dest, "pg")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	// Kill the whole process group: runuser and bcloud.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backup to start", time.Minute, func() bool {
		return pg.QueryString(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bcloud_backup' AND query ILIKE '%pg_backup_start%'") == "1"
	})
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if strings.Contains(out.String(), "backup completed") {
		t.Fatalf("the backup finished before it was killed:\n%s", out)
	}

	// The session ends with the process, and PostgreSQL ends its backup.
	waitFor(t, "the backup session to end", time.Minute, func() bool {
		return pg.QueryString(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bcloud_backup'") == "0"
	})
	infos, _ := filepath.Glob(filepath.Join(store, "pg", "base", "*", "backup.info"))
	if len(infos) != 0 {
		t.Fatalf("a killed backup left %v", infos)
	}
	list := bkRun(t, nil, bin, "backup-list", "--format", "json", dest, "pg")
	if strings.Contains(list, `"backup_id"`) {
		t.Fatalf("backup-list shows the killed backup: %s", list)
	}

	// A new backup (a second later, so a new ID) succeeds.
	time.Sleep(time.Second)
	bkRun(t, bkPGEnv(pg), bin, "backup", "--immediate-checkpoint", "-J", "2", dest, "pg")
	list = bkRun(t, nil, bin, "backup-list", dest, "pg")
	if n := strings.Count(list, "\n"); n != 2 {
		t.Fatalf("backup-list after the second backup:\n%s", list)
	}

	// A failure during the copy: a file postgres cannot read.
	bad := filepath.Join(pg.DataDir, "unreadable")
	if err := os.WriteFile(bad, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		_ = os.Chown(bad, 0, 0)
	} else if err := os.Chmod(bad, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	code, failOut := bkExit(t, bkPGEnv(pg), bin, "backup", "--immediate-checkpoint", dest, "pg")
	if code != 1 || !strings.Contains(failOut, "permission denied") {
		t.Fatalf("backup with an unreadable file: exit %d, want 1\n%s", code, failOut)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	list = bkRun(t, nil, bin, "backup-list", "--format", "json", dest, "pg")
	if !strings.Contains(list, `"status": "FAILED"`) || !strings.Contains(list, `"error": "failure uploading data (`) {
		t.Fatalf("backup-list JSON does not show the FAILED backup: %s", list)
	}
	list = bkRun(t, nil, bin, "backup-list", dest, "pg")
	if n := strings.Count(list, "\n"); n != 2 {
		t.Fatalf("backup-list console shows the FAILED backup:\n%s", list)
	}
	if n := pg.QueryString(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bcloud_backup'"); n != "0" {
		t.Fatalf("%s backup sessions left after the failure", n)
	}
}

// bkExit runs a command as postgres and returns its exit code and output.
func bkExit(t *testing.T, env []string, name string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := bkAsPostgres(ctx, env, name, args...).CombinedOutput()
	if err == nil {
		return 0, string(out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%s: %v", name, err)
	return -1, ""
}

// TestBackupCLIErrors checks barman's exit codes for usage and catalog
// errors.
func TestBackupCLIErrors(t *testing.T) {
	bin := bcloudBin(t)
	store := testenv.NewDir(t)
	dest := "file://" + store
	nonEmpty := testenv.NewDir(t)
	if err := os.WriteFile(filepath.Join(nonEmpty, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
	}{
		{[]string{"backup", "-S", "10X", dest, "pg"}, 3},
		{[]string{"backup", "--gzip", "--bzip2", dest, "pg"}, 3},
		{[]string{"backup", "-n", "latest", dest, "pg"}, 3},
		{[]string{"backup", "-J", "0", dest, "pg"}, 3},
		{[]string{"backup", dest}, 3},
		{[]string{"backup", "-h", "/nonexistent", "-p", "1", dest, "pg"}, 1},
		{[]string{"backup-show", dest, "pg", "20240101T000000"}, 1},
		{[]string{"backup-show", dest, "pg", "nosuchname"}, 1},
		{[]string{"restore", dest, "pg", "latest", nonEmpty}, 1},
		{[]string{"restore", "--target-lsn", "0/1", "--target-time", "2024-01-01", dest, "pg", "auto", nonEmpty}, 3},
		{[]string{"restore", "--target-lsn", "0/1", dest, "pg", "latest", nonEmpty}, 3},
		{[]string{"restore", "--recovery-target-xid", "1", "--recovery-target-name", "x", dest, "pg", "latest", nonEmpty}, 3},
		{[]string{"restore", "--tablespace", "nocolon", dest, "pg", "latest", nonEmpty}, 3},
	}
	for _, c := range cases {
		code, out := bkExit(t, nil, bin, c.args...)
		if code != c.code {
			t.Errorf("bcloud %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, c.code, out)
		}
	}
	code, out := bkExit(t, nil, bin, "backup-list", "--format", "json", dest, "pg")
	if code != 0 || strings.TrimSpace(out) != `{"backups_list": []}` {
		t.Errorf("backup-list of an empty store: exit %d: %s", code, out)
	}
}

// TestBackupBarmanCloudCompat checks both directions against the real
// barman-cloud 3.4 on S3 (versitygw), for each base-backup codec that
// barman-cloud 3.4 handles on Debian: a backup by barman-cloud-backup is
// restored by bcloud and started; a backup by bcloud is listed by
// barman-cloud-backup-list, shown by barman-cloud-backup-show, restored by
// barman-cloud-restore and started.
func TestBackupBarmanCloudCompat(t *testing.T) {
	barmanBackup := testenv.Tool(t, "barman-cloud-backup")
	barmanRestore := testenv.Tool(t, "barman-cloud-restore")
	barmanList := testenv.Tool(t, "barman-cloud-backup-list")
	barmanShow := testenv.Tool(t, "barman-cloud-backup-show")
	bin := bcloudBin(t)
	s3 := testenv.VersityGW(t)
	bucket := s3.NewBucket(t)
	dest := "s3://" + bucket + "/compat"
	env := []string{"AWS_ACCESS_KEY_ID=" + s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3.Secret,
		"AWS_DEFAULT_REGION=" + s3.Region, "AWS_ENDPOINT_URL=" + s3.Endpoint}
	barmanFlags := []string{"--endpoint-url", s3.Endpoint}
	pg, _ := bkSource(t, bin, dest, env)
	pg.Pgbench(t, "-i", "-s", "1", "postgres")
	oid := pg.QueryString(t, "SELECT oid FROM pg_tablespace WHERE spcname = 'bk_ts'")

	// recoverAll makes a restored directory replay the whole archive.
	recoverAll := func(t *testing.T, dir string) {
		conf := fmt.Sprintf("\nrestore_command = '%s wal-restore %s pg %%f %%p'\n", bin, dest)
		f, err := os.OpenFile(filepath.Join(dir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(conf); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		if err := os.WriteFile(filepath.Join(dir, "recovery.signal"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, dir string, want bkState) {
		r := bkStartRestored(t, dir, env)
		if got := bkSnapshot(t, r); got != want {
			t.Fatalf("restored rows %s checksum %s, want rows %s checksum %s", got.rows, got.sum, want.rows, want.sum)
		}
		bkAmcheck(t, r)
	}

	next := 1
	for _, codec := range []struct{ name, flag string }{{"none", ""}, {"gzip", "--gzip"}, {"bzip2", "--bzip2"}} {
		t.Run(codec.name, func(t *testing.T) {
			flags := func(extra ...string) []string {
				if codec.flag != "" {
					extra = append(extra, codec.flag)
				}
				return extra
			}
			// barman-cloud-backup -> bcloud restore.
			bkInsert(t, pg, next, next*1000, 300)
			next++
			name := "barman-" + codec.name
			args := append(flags(barmanFlags...), "-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port), "-U", "postgres",
				"--immediate-checkpoint", "-n", name, dest, "pg")
			run(t, env, barmanBackup, args...)
			want := bkSnapshot(t, pg)
			bkWaitArchived(t, pg)
			dir, ts := testenv.NewDir(t), testenv.NewDir(t)
			bkRun(t, env, bin, "restore", "--tablespace", "bk_ts:"+ts, "--recovery-target-latest", dest, "pg", name, dir)
			if _, err := os.Readlink(filepath.Join(dir, "pg_tblspc", oid)); err != nil {
				t.Fatalf("no tablespace link: %v", err)
			}
			check(t, dir, want)

			// bcloud backup -> barman-cloud-backup-list/-show/-restore.
			bkInsert(t, pg, next, next*1000, 300)
			next++
			name = "bcloud-" + codec.name
			bkRun(t, append(env, bkPGEnv(pg)...), bin, append(flags("backup", "--immediate-checkpoint", "-J", "3", "-S", "3MB", "-n", name), dest, "pg")...)
			want = bkSnapshot(t, pg)
			bkWaitArchived(t, pg)
			list := run(t, env, barmanList, append(barmanFlags, "--format", "json", dest, "pg")...)
			if !strings.Contains(list, `"backup_name": "`+name+`"`) || strings.Contains(list, `"status": "FAILED"`) {
				t.Fatalf("barman-cloud-backup-list does not show %s as DONE:\n%s", name, list)
			}
			if codec.name == "none" {
				// The console forms once: each barman-cloud run costs seconds.
				console := run(t, env, barmanList, append(barmanFlags, dest, "pg")...)
				if !strings.Contains(console, name) {
					t.Fatalf("barman-cloud-backup-list console misses %s:\n%s", name, console)
				}
				run(t, env, barmanShow, append(barmanFlags, dest, "pg", name)...)
			}
			show := run(t, env, barmanShow, append(barmanFlags, "--format", "json", dest, "pg", name)...)
			if !strings.HasPrefix(show, `{"cloud": {`) || !strings.Contains(show, `"status": "DONE"`) {
				t.Fatalf("barman-cloud-backup-show: %s", show)
			}
			dir, ts = testenv.NewDir(t), testenv.NewDir(t)
			_ = os.Remove(dir) // barman-cloud-restore wants an absent or empty directory
			run(t, env, barmanRestore, append(barmanFlags, "--tablespace", "bk_ts:"+ts, dest, "pg", name, dir)...)
			recoverAll(t, dir)
			check(t, dir, want)
		})
	}
}
