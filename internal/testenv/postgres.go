package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgBinDir is where Debian's postgresql-15 package installs its binaries.
// BCLOUD_PGBIN overrides it.
const pgBinDir = "/usr/lib/postgresql/15/bin"

// pgUserName is the account PostgreSQL runs as when the tests run as root.
const pgUserName = "postgres"

// PGOptions configures a test PostgreSQL server.
type PGOptions struct {
	// Conf holds extra postgresql.conf settings (archive_mode, wal_level,
	// archive_command...). Values are written quoted, so any text works.
	// port, listen_addresses and unix_socket_directories are set by the
	// harness and cannot be overridden.
	Conf map[string]string
	// InitArgs are extra initdb arguments, e.g. --wal-segsize=1.
	InitArgs []string
	// DataDir, when set, is an existing data directory (e.g. a restored
	// backup) used instead of running initdb. It is chowned to postgres and
	// made 0700.
	DataDir string
	// Env is added to the server's environment, so archive_command and
	// restore_command see it (e.g. credentials for the object store).
	Env []string
	// Fast turns fsync and synchronous_commit off. Crash tests must leave
	// it false.
	Fast bool
}

// PG is a PostgreSQL server run for a test.
type PG struct {
	DataDir   string
	SocketDir string
	Port      int

	bin        string
	logFile    string
	env        []string
	switchUser bool
	running    bool
}

// pgBin returns the PostgreSQL binary directory, or marks the test as
// missing PostgreSQL.
func pgBin(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("BCLOUD_PGBIN")
	if dir == "" {
		dir = pgBinDir
	}
	if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err != nil {
		Missing(t, "PostgreSQL 15 ("+dir+")")
	}
	return dir
}

// pgIDs returns the uid and gid that PostgreSQL runs as, and whether
// commands must switch to that user (only when running as root).
func pgIDs(t testing.TB) (uid, gid int, switchUser bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		return os.Geteuid(), os.Getegid(), false
	}
	u, err := user.Lookup(pgUserName)
	if err != nil {
		Missing(t, "user "+pgUserName)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		t.Fatalf("parse uid of %s: %v", pgUserName, err)
	}
	gid, err = strconv.Atoi(u.Gid)
	if err != nil {
		t.Fatalf("parse gid of %s: %v", pgUserName, err)
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		Missing(t, "runuser")
	}
	return uid, gid, true
}

// NewDir returns a new temporary directory owned by the postgres user with
// mode 0700, removed at cleanup. Use it for data directories, tablespaces,
// spool directories and file:// stores that postgres-run commands write to.
func NewDir(t testing.TB) string {
	t.Helper()
	uid, gid, _ := pgIDs(t)
	dir, err := os.MkdirTemp(os.TempDir(), "bcloud-pg-")
	if err != nil {
		t.Fatalf("create temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("chown %s: %v", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatalf("chmod %s: %v", dir, err)
	}
	return dir
}

// Postgres runs initdb (unless opts.DataDir is set), configures and starts
// a server on a free port of 127.0.0.1 and a private unix socket directory.
// The server is stopped (fast mode) at cleanup.
func Postgres(t testing.TB, opts PGOptions) *PG {
	t.Helper()
	bin := pgBin(t)
	uid, gid, switchUser := pgIDs(t)
	base := NewDir(t)
	p := &PG{
		switchUser: switchUser,
		SocketDir:  filepath.Join(base, "sock"),
		Port:       FreePort(t),
		bin:        bin,
		logFile:    filepath.Join(base, "postgres.log"),
		env:        append([]string(nil), opts.Env...),
	}
	if err := os.Mkdir(p.SocketDir, 0o700); err != nil {
		t.Fatalf("create socket dir: %v", err)
	}
	if err := os.Chown(p.SocketDir, uid, gid); err != nil {
		t.Fatalf("chown socket dir: %v", err)
	}

	if opts.DataDir != "" {
		p.DataDir = opts.DataDir
		if err := chownTree(p.DataDir, uid, gid); err != nil {
			t.Fatalf("chown data dir: %v", err)
		}
		if err := os.Chmod(p.DataDir, 0o700); err != nil {
			t.Fatalf("chmod data dir: %v", err)
		}
	} else {
		p.DataDir = filepath.Join(base, "data")
		args := []string{"-D", p.DataDir, "-U", "postgres", "-A", "trust",
			"-E", "UTF8", "--locale=C", "--no-sync"}
		args = append(args, opts.InitArgs...)
		p.Run(t, "initdb", args...)
	}

	if err := p.writeConf(opts); err != nil {
		t.Fatalf("configure %s: %v", p.DataDir, err)
	}
	t.Cleanup(func() { p.stopQuietly(t) })
	for attempt := 1; ; attempt++ {
		err := p.start()
		if err == nil {
			return p
		}
		// Another process may have taken the free port in the meantime.
		if attempt < 3 && strings.Contains(p.Log(), "could not bind") {
			p.Port = FreePort(t)
			if err := p.writeConf(opts); err != nil {
				t.Fatalf("configure %s: %v", p.DataDir, err)
			}
			continue
		}
		t.Fatalf("%v\nserver log:\n%s", err, p.Log())
	}
}

// writeConf appends the test settings to postgresql.conf, where the last
// occurrence of a setting wins over earlier ones (e.g. a restored copy's).
func (p *PG) writeConf(opts PGOptions) error {
	settings := map[string]string{
		"lc_messages":       "C",
		"logging_collector": "off",
	}
	if opts.Fast {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
	}
	for k, v := range opts.Conf {
		settings[k] = v
	}
	// Where the server listens is the harness's choice, whatever Conf says.
	settings["port"] = strconv.Itoa(p.Port)
	settings["listen_addresses"] = "127.0.0.1"
	settings["unix_socket_directories"] = p.SocketDir
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# bcloud testenv settings\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, quoteConf(settings[k]))
	}
	path := filepath.Join(p.DataDir, "postgresql.conf")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		_ = f.Close()
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close postgresql.conf: %w", err)
	}
	uid, gid := fileOwner(p.DataDir)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("chown postgresql.conf: %w", err)
	}
	return nil
}

// quoteConf quotes a postgresql.conf value: PostgreSQL accepts a quoted
// string for settings of every type.
func quoteConf(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, "'", "''")
	return "'" + v + "'"
}

// fileOwner returns the uid and gid owning path, or the current ids.
func fileOwner(path string) (int, int) {
	fi, err := os.Stat(path)
	if err != nil {
		return os.Geteuid(), os.Getegid()
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return os.Geteuid(), os.Getegid()
}

// chownTree changes the owner of dir and everything below it.
func chownTree(dir string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// command builds a command that runs a PostgreSQL binary as the postgres
// user, with the server environment and the base directory as working
// directory.
func (p *PG) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := name
	if !filepath.IsAbs(name) {
		path = filepath.Join(p.bin, name)
	}
	var cmd *exec.Cmd
	if p.switchUser {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", pgUserName, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Dir = filepath.Dir(p.SocketDir)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// Run runs a PostgreSQL binary (pg_controldata, pg_waldump, psql...) as the
// postgres user with the server environment and returns its combined
// output; it fails the test on a non-zero exit.
func (p *PG) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := p.run(5*time.Minute, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// run runs a PostgreSQL binary as postgres and returns its output.
func (p *PG) run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := p.command(ctx, name, args...)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	return buf.String(), err
}

// Start starts the server and waits until it accepts connections.
func (p *PG) Start(t testing.TB) {
	t.Helper()
	if err := p.start(); err != nil {
		t.Fatalf("%v\nserver log:\n%s", err, p.Log())
	}
}

// start runs pg_ctl start and waits for the server to accept connections.
func (p *PG) start() error {
	out, err := p.run(90*time.Second, "pg_ctl", "-D", p.DataDir, "-l", p.logFile, "-w", "-t", "60", "start")
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w: %s", err, strings.TrimSpace(out))
	}
	p.running = true
	return nil
}

// Stop stops the server in fast mode.
func (p *PG) Stop(t testing.TB) {
	t.Helper()
	if err := p.stop("fast"); err != nil {
		t.Fatalf("stop PostgreSQL: %v\nserver log:\n%s", err, p.Log())
	}
}

// Restart stops the server in fast mode and starts it again.
func (p *PG) Restart(t testing.TB) {
	t.Helper()
	p.Stop(t)
	p.Start(t)
}

// stop runs pg_ctl stop unless the server is already down.
func (p *PG) stop(mode string) error {
	if !p.Running() {
		p.running = false
		return nil
	}
	out, err := p.run(90*time.Second, "pg_ctl", "-D", p.DataDir, "-m", mode, "-w", "-t", "60", "stop")
	if err != nil && p.Running() {
		return fmt.Errorf("pg_ctl stop -m %s: %w: %s", mode, err, strings.TrimSpace(out))
	}
	p.running = false
	return nil
}

// stopQuietly is the cleanup: fast, then immediate, then SIGKILL.
func (p *PG) stopQuietly(t testing.TB) {
	err := p.stop("fast")
	if err == nil {
		return
	}
	t.Logf("stop PostgreSQL: %v", err)
	if err := p.stop("immediate"); err == nil {
		return
	}
	if pid := p.postmasterPID(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// postmasterPID returns the pid in postmaster.pid, or 0.
func (p *PG) postmasterPID() int {
	b, err := os.ReadFile(filepath.Join(p.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0
	}
	return pid
}

// Running reports whether the postmaster of this data directory is alive.
func (p *PG) Running() bool {
	pid := p.postmasterPID()
	if pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// ConnString returns a libpq keyword/value connection string for the
// server's unix socket.
func (p *PG) ConnString() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", p.SocketDir, p.Port)
}

// connect opens a pgx connection or returns the error.
func (p *PG) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.ConnString() + " connect_timeout=10")
	if err != nil {
		return nil, fmt.Errorf("parse connection string: %w", err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return pgx.ConnectConfig(ctx, cfg)
}

// Exec runs SQL (several statements are allowed) on a new connection and
// fails the test on error.
func (p *PG) Exec(t testing.TB, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := p.connect(ctx)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v\nserver log:\n%s", err, p.Log())
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// QueryString runs a query returning one value and returns it as text
// ("" for NULL); it fails the test on error or when no row comes back.
func (p *PG) QueryString(t testing.TB, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := p.connect(ctx)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v\nserver log:\n%s", err, p.Log())
	}
	defer conn.Close(context.Background())
	s, err := queryText(ctx, conn, sql)
	if err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	return s
}

// queryText returns the first column of the first row in text format.
func queryText(ctx context.Context, conn *pgx.Conn, sql string) (string, error) {
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", err
		}
		return "", fmt.Errorf("no rows")
	}
	raw := rows.RawValues()
	if len(raw) == 0 {
		return "", fmt.Errorf("no columns")
	}
	s := string(raw[0])
	rows.Close()
	return s, rows.Err()
}

// WaitRecovered waits until the server is out of recovery
// (pg_is_in_recovery() is false) or has shut down, e.g. after a
// point-in-time recovery with recovery_target_action=promote or shutdown.
func (p *PG) WaitRecovered(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if !p.Running() {
			p.running = false
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := p.connect(ctx)
		if err == nil {
			var s string
			s, err = queryText(ctx, conn, "SELECT pg_is_in_recovery()")
			_ = conn.Close(context.Background())
			if err == nil && s == "f" {
				cancel()
				return
			}
			if err == nil {
				last = "still in recovery"
			}
		}
		if err != nil {
			last = err.Error()
		}
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("PostgreSQL did not leave recovery within %s (%s)\nserver log:\n%s", timeout, last, p.Log())
}

// Log returns the last lines of the server log, for failure messages.
func (p *PG) Log() string {
	return (&Process{Log: p.logFile}).Tail()
}

// LogFile returns the path of the server log.
func (p *PG) LogFile() string { return p.logFile }

// Pgbench runs pgbench as postgres against this server; args are passed
// as given (e.g. "-i", "-s", "1" or "-T", "5"). It fails the test on a
// non-zero exit.
func (p *PG) Pgbench(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := p.command(ctx, "pgbench", args...)
	cmd.Env = append(cmd.Env, "PGHOST="+p.SocketDir, "PGPORT="+strconv.Itoa(p.Port),
		"PGUSER=postgres", "PGDATABASE=postgres")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
