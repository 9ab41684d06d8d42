package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPostgresBasic(t *testing.T) {
	pg := Postgres(t, PGOptions{Fast: true, Env: []string{"BCLOUD_TEST_MARKER=hello world"}})
	pg.Exec(t, "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one'), (2, 'two')")
	if got := pg.QueryString(t, "SELECT count(*) FROM items"); got != "2" {
		t.Fatalf("count = %q, want 2", got)
	}
	if got := pg.QueryString(t, "SELECT name FROM items WHERE id = 2"); got != "two" {
		t.Fatalf("name = %q, want two", got)
	}
	if got := pg.QueryString(t, "SHOW fsync"); got != "off" {
		t.Fatalf("fsync = %q, want off with Fast", got)
	}
	if got := pg.QueryString(t, "SHOW port"); got != strconv.Itoa(pg.Port) {
		t.Fatalf("port = %q, want %d", got, pg.Port)
	}
	if !strings.Contains(pg.ConnString(), "host="+pg.SocketDir) {
		t.Fatalf("ConnString %q lacks the socket dir", pg.ConnString())
	}
	// The server environment reaches commands the server runs.
	out := filepath.Join(NewDir(t), "env.txt")
	pg.Exec(t, "COPY (SELECT 1) TO PROGRAM 'printenv BCLOUD_TEST_MARKER > "+out+"'")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != "hello world" {
		t.Fatalf("server env BCLOUD_TEST_MARKER = %q", b)
	}

	pg.Restart(t)
	if got := pg.QueryString(t, "SELECT count(*) FROM items"); got != "2" {
		t.Fatalf("count after restart = %q, want 2", got)
	}
	if got := pg.QueryString(t, "SELECT NULL"); got != "" {
		t.Fatalf("NULL = %q, want empty", got)
	}
	pg.WaitRecovered(t, 10*time.Second)
	pg.Pgbench(t, "-i", "-s", "1", "-q")
	if got := pg.QueryString(t, "SELECT count(*) FROM pgbench_accounts"); got != "100000" {
		t.Fatalf("pgbench_accounts = %q", got)
	}
	pg.Stop(t)
	if pg.Running() {
		t.Fatal("server still running after Stop")
	}
	pg.WaitRecovered(t, time.Second) // returns at once: the server is down
}

func TestPostgresWALSegSize(t *testing.T) {
	pg := Postgres(t, PGOptions{
		InitArgs: []string{"--wal-segsize=1", "--data-checksums"},
		Conf:     map[string]string{"wal_level": "replica", "max_wal_senders": "2", "application_name": "it's a \\ test"},
	})
	if got := pg.QueryString(t, "SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"); got != "1048576" {
		t.Fatalf("wal_segment_size = %q, want 1048576", got)
	}
	if got := pg.QueryString(t, "SHOW data_checksums"); got != "on" {
		t.Fatalf("data_checksums = %q, want on", got)
	}
	if got := pg.QueryString(t, "SHOW fsync"); got != "on" {
		t.Fatalf("fsync = %q, want on by default", got)
	}
	if got := pg.QueryString(t, "SELECT setting FROM pg_settings WHERE name = 'application_name'"); got != `it's a \ test` {
		t.Fatalf("quoted setting = %q", got)
	}
}

func TestPostgresExistingDataDir(t *testing.T) {
	first := Postgres(t, PGOptions{Fast: true})
	first.Exec(t, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
	first.Stop(t)
	second := Postgres(t, PGOptions{DataDir: first.DataDir, Fast: true})
	if got := second.QueryString(t, "SELECT v FROM kept"); got != "yes" {
		t.Fatalf("kept = %q", got)
	}
	if got := second.QueryString(t, "SHOW port"); got != strconv.Itoa(second.Port) {
		t.Fatalf("port = %q, want %d (the last setting wins)", got, second.Port)
	}
}
