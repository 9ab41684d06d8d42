package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

const mib = 1 << 20

// connect opens a Conn to pg and closes it at cleanup.
func connect(t *testing.T, ctx context.Context, conninfo string) *Conn {
	t.Helper()
	c, err := Connect(ctx, conninfo)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// sessionSetting reads a setting as the Conn's own session sees it.
func sessionSetting(t *testing.T, ctx context.Context, c *Conn, name string) string {
	t.Helper()
	var s string
	if err := c.conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&s); err != nil {
		t.Fatalf("current_setting(%s): %v", name, err)
	}
	return s
}

func mustLSN(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPostgres15(t *testing.T) {
	ctx := testenv.Context(t)
	incDir := testenv.NewDir(t)
	incFile := filepath.Join(incDir, "extra.conf")
	if err := os.WriteFile(incFile, []byte("work_mem = '8MB'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pg := testenv.Postgres(t, testenv.PGOptions{
		Fast: true,
		Conf: map[string]string{"include": incFile, "idle_session_timeout": "1h"},
	})
	tsDir := testenv.NewDir(t)
	pg.Exec(t, fmt.Sprintf("CREATE TABLESPACE ts1 LOCATION '%s'", tsDir))
	pg.Exec(t, "CREATE TABLE t1 (id int) TABLESPACE ts1; INSERT INTO t1 SELECT generate_series(1, 1000)")
	tsOID := pg.QueryString(t, "SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")

	t.Run("Metadata", func(t *testing.T) {
		c := connect(t, ctx, pg.ConnString())
		m, err := c.Metadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.PGData != pg.DataDir {
			t.Errorf("PGData = %q, want %q", m.PGData, pg.DataDir)
		}
		if m.Version < 150000 || m.Version >= 160000 {
			t.Errorf("Version = %d, want 15xxxx", m.Version)
		}
		if v, _ := c.ServerVersion(ctx); v != m.Version {
			t.Errorf("ServerVersion = %d, Metadata.Version = %d", v, m.Version)
		}
		if m.SegmentSize != 16*mib {
			t.Errorf("SegmentSize = %d", m.SegmentSize)
		}
		if want := filepath.Join(pg.DataDir, "postgresql.conf"); m.ConfigFile != want {
			t.Errorf("ConfigFile = %q, want %q", m.ConfigFile, want)
		}
		if want := filepath.Join(pg.DataDir, "pg_hba.conf"); m.HBAFile != want {
			t.Errorf("HBAFile = %q, want %q", m.HBAFile, want)
		}
		if want := filepath.Join(pg.DataDir, "pg_ident.conf"); m.IdentFile != want {
			t.Errorf("IdentFile = %q, want %q", m.IdentFile, want)
		}
		if len(m.IncludedFiles) != 1 || m.IncludedFiles[0] != incFile {
			t.Errorf("IncludedFiles = %q, want [%q]", m.IncludedFiles, incFile)
		}
		if len(m.Tablespaces) != 1 {
			t.Fatalf("Tablespaces = %+v, want ts1", m.Tablespaces)
		}
		ts := m.Tablespaces[0]
		if ts.Name != "ts1" || strconv.FormatUint(uint64(ts.OID), 10) != tsOID || ts.Location != tsDir {
			t.Errorf("Tablespace = %+v, want ts1 %s %s", ts, tsOID, tsDir)
		}
		if m.DataChecksums != "off" {
			t.Errorf("DataChecksums = %q", m.DataChecksums)
		}
		if m.SummarizeWAL != nil {
			t.Errorf("SummarizeWAL = %q, want nil before 17", *m.SummarizeWAL)
		}
		size, _ := strconv.ParseInt(pg.QueryString(t, "SELECT sum(pg_tablespace_size(oid)) FROM pg_tablespace"), 10, 64)
		if m.ClusterSize <= 0 || m.ClusterSize < size/2 || m.ClusterSize > size*2 {
			t.Errorf("ClusterSize = %d, server says %d", m.ClusterSize, size)
		}
		control := pg.Run(t, "pg_controldata", "-D", pg.DataDir)
		if !regexp.MustCompile(`Database system identifier:\s+` + m.SystemID + `\n`).MatchString(control) {
			t.Errorf("SystemID %q not in pg_controldata output:\n%s", m.SystemID, control)
		}
		if m.IsInRecovery {
			t.Error("IsInRecovery = true on a primary")
		}
	})

	t.Run("StartStop", func(t *testing.T) {
		c := connect(t, ctx, pg.ConnString())
		before := mustLSN(t, must(t)(c.CurrentWALLSN(ctx)))
		label := "Barman backup cloud 20240115T103000"
		t0 := time.Now()
		start, err := c.StartBackup(ctx, label, true)
		if err != nil {
			t.Fatal(err)
		}
		startLSN := mustLSN(t, start.LSN)
		if startLSN < before || start.Timeline != 1 {
			t.Errorf("start = %+v, before %s", start, FormatLSN(before))
		}
		if d := start.Time.Sub(t0); d < -time.Minute || d > time.Minute {
			t.Errorf("start time %v is far from %v", start.Time, t0)
		}
		if got := sessionSetting(t, ctx, c, "idle_session_timeout"); got != "0" {
			t.Errorf("idle_session_timeout during backup = %q, want 0", got)
		}
		if _, err := c.StartBackup(ctx, label, false); err == nil || !strings.Contains(err.Error(), "already in progress") {
			t.Errorf("second StartBackup on the session: %v", err)
		}
		pg.Exec(t, "INSERT INTO t1 SELECT generate_series(1, 1000)")

		stop, err := c.StopBackup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := sessionSetting(t, ctx, c, "idle_session_timeout"); got != "1h" {
			t.Errorf("idle_session_timeout after backup = %q, want the server's 1h", got)
		}
		stopLSN := mustLSN(t, stop.LSN)
		if stopLSN < startLSN || stop.Timeline != 1 {
			t.Errorf("stop = %+v, start %s", stop, start.LSN)
		}
		if stop.Time.Before(start.Time) {
			t.Errorf("stop time %v before start time %v", stop.Time, start.Time)
		}
		wantStart := fmt.Sprintf("START WAL LOCATION: %s (file %s)\n", start.LSN, WALFileName(1, startLSN, 16*mib))
		for _, want := range []string{wantStart, "LABEL: " + label + "\n", "START TIMELINE: 1\n", "BACKUP METHOD: streamed\n"} {
			if !strings.Contains(stop.LabelFile, want) {
				t.Errorf("label file lacks %q:\n%s", want, stop.LabelFile)
			}
		}
		if want := tsOID + " " + tsDir + "\n"; stop.TablespaceMap != want {
			t.Errorf("TablespaceMap = %q, want %q", stop.TablespaceMap, want)
		}
		_, offset := walfileNameOffset(t, pg, stop.LSN)
		if got := WALOffset(stopLSN, 16*mib); strconv.FormatInt(got, 10) != offset {
			t.Errorf("WALOffset(%s) = %d, server says %s", stop.LSN, got, offset)
		}

		sw, err := c.SwitchWAL(ctx)
		if err != nil || mustLSN(t, sw) < stopLSN {
			t.Errorf("SwitchWAL = %q, %v", sw, err)
		}
		after := mustLSN(t, must(t)(c.CurrentWALLSN(ctx)))
		if WALFileName(1, after, 16*mib) == WALFileName(1, stopLSN, 16*mib) {
			t.Errorf("still in segment %s after SwitchWAL", WALFileName(1, after, 16*mib))
		}
		rp, err := c.CreateRestorePoint(ctx, "barman_20240115T103000")
		if err != nil || mustLSN(t, rp) < after {
			t.Errorf("CreateRestorePoint = %q, %v", rp, err)
		}
	})

	t.Run("StopWithoutStart", func(t *testing.T) {
		c := connect(t, ctx, pg.ConnString())
		_, err := c.StopBackup(ctx)
		if err == nil {
			t.Fatal("StopBackup without a backup succeeded")
		}
		if msg := err.Error(); !strings.Contains(msg, "backup is not in progress") || strings.Contains(msg, "\n") {
			t.Errorf("error = %q", msg)
		}
		if _, err := c.CurrentWALLSN(ctx); err != nil {
			t.Errorf("session unusable after the failed stop: %v", err)
		}
	})

	t.Run("DroppedConnection", func(t *testing.T) {
		c, err := Connect(ctx, pg.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		if _, err := c.StartBackup(ctx, "dropped", true); err != nil {
			t.Fatal(err)
		}
		pid := c.conn.PgConn().PID()
		_ = c.conn.PgConn().Conn().Close() // the client vanishes without a word
		deadline := time.Now().Add(30 * time.Second)
		for pg.QueryString(t, fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid)) != "0" {
			if time.Now().After(deadline) {
				t.Fatalf("backend %d still alive", pid)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for !strings.Contains(readFile(t, pg.LogFile()), "aborting backup due to backend exiting before pg_backup_stop was called") {
			if time.Now().After(deadline) {
				t.Fatalf("server log does not show the backup aborted:\n%s", pg.Log())
			}
			time.Sleep(100 * time.Millisecond)
		}
		c2 := connect(t, ctx, pg.ConnString())
		if _, err := c2.StopBackup(ctx); err == nil {
			t.Fatal("a new session could stop the dropped session's backup")
		}
		if _, err := c2.StartBackup(ctx, "after drop", true); err != nil {
			t.Fatalf("StartBackup after the drop: %v", err)
		}
		if _, err := c2.StopBackup(ctx); err != nil {
			t.Fatalf("StopBackup after the drop: %v", err)
		}
	})

	t.Run("SessionTimeZone", func(t *testing.T) {
		c := connect(t, ctx, pg.ConnString()+" timezone=Asia/Kolkata")
		start, err := c.StartBackup(ctx, "tz", false)
		if err != nil {
			t.Fatal(err)
		}
		stop, err := c.StopBackup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tm := range []time.Time{start.Time, stop.Time} {
			if _, off := tm.Zone(); off != 5*3600+1800 {
				t.Errorf("time %v has offset %d, want +05:30", tm, off)
			}
		}
		if got := start.Time.Format("-07:00"); got != "+05:30" {
			t.Errorf("offset formats as %q", got)
		}
	})

	t.Run("ApplicationName", func(t *testing.T) {
		c := connect(t, ctx, pg.ConnString())
		if got := sessionSetting(t, ctx, c, "application_name"); got != DefaultApplicationName {
			t.Errorf("application_name = %q", got)
		}
		c = connect(t, ctx, pg.ConnString()+" application_name=mine")
		if got := sessionSetting(t, ctx, c, "application_name"); got != "mine" {
			t.Errorf("application_name = %q, want mine", got)
		}
		t.Setenv("PGAPPNAME", "fromenv")
		c = connect(t, ctx, pg.ConnString())
		if got := sessionSetting(t, ctx, c, "application_name"); got != "fromenv" {
			t.Errorf("application_name = %q, want fromenv", got)
		}
	})

	t.Run("ConnectErrors", func(t *testing.T) { testConnectErrors(t, ctx, pg) })
}

// testConnectErrors checks that failed connections give one clear line
// that never holds the password.
func testConnectErrors(t *testing.T, ctx context.Context, pg *testenv.PG) {
	const secret = "Sup3rSecretPassw0rd"
	pg.Exec(t, "ALTER USER postgres PASSWORD 'the-right-one'")
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(pg.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "SELECT pg_reload_conf()")
	tcp := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", pg.Port)

	check := func(name, conninfo, want string) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c, err := Connect(cctx, conninfo)
		if err == nil {
			_ = c.Close(ctx)
			t.Errorf("%s: Connect succeeded", name)
			return
		}
		msg := err.Error()
		t.Logf("%s: %s", name, msg)
		if strings.Contains(msg, secret) {
			t.Errorf("%s: error shows the password: %s", name, msg)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: error has several lines: %q", name, msg)
		}
		if !strings.Contains(msg, want) {
			t.Errorf("%s: error %q lacks %q", name, msg, want)
		}
	}

	// The reload is asynchronous: wait until password authentication is on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := Connect(ctx, tcp+" password="+secret)
		if err != nil {
			break
		}
		_ = c.Close(ctx)
		if time.Now().After(deadline) {
			t.Fatal("pg_hba.conf reload did not take effect")
		}
		time.Sleep(100 * time.Millisecond)
	}

	check("wrong password", tcp+" password="+secret, "password authentication failed")
	check("wrong password URL", fmt.Sprintf("postgresql://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", secret, pg.Port),
		"password authentication failed")
	check("closed port", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s connect_timeout=5", testenv.FreePort(t), secret),
		"connection refused")
	check("missing socket dir", "host=/nonexistent/socket/dir port=5432 user=postgres password="+secret, "connect to PostgreSQL (host=/nonexistent/socket/dir")
	check("bad port syntax", "host=127.0.0.1 port=notaport password="+secret, "parse connection string")
	check("bad URL", "postgresql://postgres:"+secret+"@127.0.0.1:notaport/postgres", "parse connection string")
	t.Setenv("PGPASSWORD", secret)
	check("wrong PGPASSWORD", tcp, "password authentication failed")

	c, err := Connect(ctx, tcp+" password=the-right-one")
	if err != nil {
		t.Fatalf("Connect with the right password: %v", err)
	}
	_ = c.Close(ctx)
}

// walfileNameOffset asks the server for pg_walfile_name_offset(lsn).
func walfileNameOffset(t *testing.T, pg *testenv.PG, lsn string) (string, string) {
	t.Helper()
	name := pg.QueryString(t, fmt.Sprintf("SELECT file_name FROM pg_walfile_name_offset('%s')", lsn))
	offset := pg.QueryString(t, fmt.Sprintf("SELECT file_offset FROM pg_walfile_name_offset('%s')", lsn))
	return name, offset
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// must unwraps a (string, error) result.
func must(t *testing.T) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestWALFileNameMatchesServer(t *testing.T) {
	ctx := testenv.Context(t)
	for _, seg := range []int64{1, 16} {
		t.Run(fmt.Sprintf("%dMiB", seg), func(t *testing.T) {
			pg := testenv.Postgres(t, testenv.PGOptions{Fast: true, InitArgs: []string{fmt.Sprintf("--wal-segsize=%d", seg)}})
			c := connect(t, ctx, pg.ConnString())
			m, err := c.Metadata(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.SegmentSize != seg*mib {
				t.Fatalf("SegmentSize = %d, want %d", m.SegmentSize, seg*mib)
			}
			pg.Exec(t, "CREATE TABLE w AS SELECT generate_series(1, 50000) AS i")
			cur := must(t)(c.CurrentWALLSN(ctx))
			lsns := []string{cur, "0/2000028", "0/FFFFFFFF", "16/B374D848", "1/0", "1/1", "A/12345678", "0/FFFFF"}
			for _, s := range lsns {
				lsn := mustLSN(t, s)
				if WALOffset(lsn, m.SegmentSize) == 0 {
					// pg_walfile_name names the previous segment for an
					// LSN on a boundary; barman (and WALFileName) the next.
					continue
				}
				name, offset := walfileNameOffset(t, pg, s)
				if got := WALFileName(1, lsn, m.SegmentSize); got != name {
					t.Errorf("WALFileName(%s, %d MiB) = %s, server says %s", s, seg, got, name)
				}
				if got := WALOffset(lsn, m.SegmentSize); strconv.FormatInt(got, 10) != offset {
					t.Errorf("WALOffset(%s, %d MiB) = %d, server says %s", s, seg, got, offset)
				}
			}
			start, err := c.StartBackup(ctx, "seg", true)
			if err != nil {
				t.Fatal(err)
			}
			stop, err := c.StopBackup(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("START WAL LOCATION: %s (file %s)", start.LSN, WALFileName(start.Timeline, mustLSN(t, start.LSN), m.SegmentSize))
			if !strings.Contains(stop.LabelFile, want) {
				t.Errorf("label file lacks %q:\n%s", want, stop.LabelFile)
			}
			if stop.TablespaceMap != "" {
				t.Errorf("TablespaceMap = %q without tablespaces", stop.TablespaceMap)
			}
		})
	}
}
