// Package postgres is the thin PostgreSQL layer of the backup engine: it
// connects with pgx and runs the queries barman-cloud-backup runs (metadata,
// pg_backup_start/pg_backup_stop, pg_switch_wal, restore points). It holds
// no backup logic.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultApplicationName is sent as application_name when the connection
// string and PGAPPNAME do not set one.
const DefaultApplicationName = "bcloud_backup"

// MinServerVersion is the oldest server_version_num supported (9.6), as in
// barman-cloud-backup.
const MinServerVersion = 90600

// Conn is one PostgreSQL session. A concurrent backup is bound to the
// session that started it, so StartBackup and StopBackup must be called on
// the same Conn. A Conn is not safe for concurrent use.
type Conn struct {
	conn    *pgx.Conn
	version int
}

// Connect opens a session. conninfo is a libpq keyword/value string or a
// postgres:// URL; PG* environment variables and the password file are
// honoured as by libpq. application_name defaults to bcloud_backup. The
// error is one line and never contains the password.
func Connect(ctx context.Context, conninfo string) (*Conn, error) {
	cfg, err := pgx.ParseConfig(conninfo)
	if err != nil {
		return nil, parseError(err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = DefaultApplicationName
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(cfg, err)
	}
	return &Conn{conn: conn}, nil
}

// safeError carries a message built to be safe to print while keeping the
// cause for errors.Is and errors.As.
type safeError struct {
	msg string
	err error
}

func (e *safeError) Error() string { return e.msg }
func (e *safeError) Unwrap() error { return e.err }

// parseError reports an invalid connection string without repeating it:
// the string may hold a password that could not be recognised.
func parseError(err error) error {
	msg := err.Error()
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// The message is "cannot parse `<conninfo>`: <reason>".
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			msg = msg[i+3:]
		} else {
			msg = "invalid syntax"
		}
	}
	return &safeError{msg: "parse connection string: " + oneLine(msg), err: err}
}

// connectError describes a failed connection by its target (never the
// password) and the server's or network's reason.
func connectError(cfg *pgx.ConnConfig, err error) error {
	reason := err.Error()
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		if inner := errors.Unwrap(ce); inner != nil {
			reason = inner.Error()
		}
	}
	reason = oneLine(reason)
	if cfg.Password != "" {
		reason = strings.ReplaceAll(reason, cfg.Password, "xxxxx")
	}
	target := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", cfg.Host, cfg.Port, cfg.User, cfg.Database)
	return &safeError{msg: fmt.Sprintf("connect to PostgreSQL (%s): %s", target, reason), err: err}
}

// oneLine joins the lines of a multi-line message.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

// BuildConnInfo builds a conninfo string from the barman-cloud-backup
// connection options as barman's build_conninfo does: a dbname that is
// empty or contains '=' is itself a conninfo and is returned verbatim;
// otherwise the non-empty options become host= port= user= dbname=, with
// values containing whitespace quoted. Callers pass dbname "postgres"
// when the user gave none. A postgres:// or postgresql:// URL is also
// returned verbatim: libpq expands such a dbname, pgx does not.
func BuildConnInfo(host string, port string, user string, dbname string) string {
	if dbname == "" || strings.Contains(dbname, "=") ||
		strings.HasPrefix(dbname, "postgresql://") || strings.HasPrefix(dbname, "postgres://") {
		return dbname
	}
	var parts []string
	for _, kv := range [][2]string{{"host", host}, {"port", port}, {"user", user}, {"dbname", dbname}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+quoteConnInfo(kv[1]))
		}
	}
	return strings.Join(parts, " ")
}

// quoteConnInfo quotes a conninfo value as barman's quote_conninfo: only
// values with whitespace are quoted, escaping backslashes and quotes.
func quoteConnInfo(v string) string {
	if v == "" {
		return "''"
	}
	if !strings.ContainsFunc(v, unicode.IsSpace) {
		return v
	}
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, "'", `\'`)
	return "'" + v + "'"
}

// Close ends the session; a backup still running on it is aborted by the
// server.
func (c *Conn) Close(ctx context.Context) error {
	if err := c.conn.Close(ctx); err != nil {
		return fmt.Errorf("close PostgreSQL connection: %w", err)
	}
	return nil
}

// ServerVersion returns server_version_num, e.g. 150004.
func (c *Conn) ServerVersion(ctx context.Context) (int, error) {
	if c.version != 0 {
		return c.version, nil
	}
	var s string
	if err := c.conn.QueryRow(ctx, "SHOW server_version_num").Scan(&s); err != nil {
		return 0, fmt.Errorf("query server_version_num: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("parse server_version_num %q: %w", s, err)
	}
	c.version = v
	return v, nil
}

// IsInRecovery reports pg_is_in_recovery(): true on a standby.
func (c *Conn) IsInRecovery(ctx context.Context) (bool, error) {
	var b bool
	if err := c.conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&b); err != nil {
		return false, fmt.Errorf("query pg_is_in_recovery: %w", err)
	}
	return b, nil
}

// supported fails for servers older than MinServerVersion.
func (c *Conn) supported(ctx context.Context) (int, error) {
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return 0, err
	}
	if v < MinServerVersion {
		return v, fmt.Errorf("check server version: PostgreSQL %d is not supported (9.6 or later is required)", v)
	}
	return v, nil
}
