package postgres

import (
	"context"
	"fmt"
	"time"
)

// BackupStart is the result of pg_backup_start: the start LSN (begin_xlog),
// the checkpoint timeline and the server's now() in the session time zone.
type BackupStart struct {
	LSN      string
	Timeline int
	Time     time.Time
}

// BackupStop is the result of pg_backup_stop: the stop LSN (end_xlog), the
// timeline, the backup_label and tablespace_map contents and the server's
// now() in the session time zone.
type BackupStop struct {
	LSN           string
	Timeline      int
	LabelFile     string
	TablespaceMap string
	Time          time.Time
}

// StartBackup starts a concurrent (non-exclusive) backup on this session:
// pg_backup_start on PostgreSQL 15 and later, pg_start_backup(label, fast,
// false) on 9.6 to 14. fast requests an immediate checkpoint. The backup
// lasts until StopBackup on the same Conn, or is aborted by the server if
// the session ends first.
func (c *Conn) StartBackup(ctx context.Context, label string, fast bool) (BackupStart, error) {
	var bs BackupStart
	v, err := c.supported(ctx)
	if err != nil {
		return bs, err
	}
	if v >= 140000 {
		// A long upload must not get the idle session closed under it.
		if _, err := c.conn.Exec(ctx, "SET idle_session_timeout TO 0"); err != nil {
			return bs, fmt.Errorf("disable idle_session_timeout: %w", err)
		}
	}
	fn := "pg_backup_start($1, $2)"
	if v < 150000 {
		fn = "pg_start_backup($1, $2, false)"
	}
	q := "SELECT location::text, (SELECT timeline_id FROM pg_control_checkpoint()), " +
		"now(), EXTRACT(TIMEZONE FROM now())::int FROM " + fn + " AS location"
	var tzOffset int
	var tli int32
	if err := c.conn.QueryRow(ctx, q, label, fast).Scan(&bs.LSN, &tli, &bs.Time, &tzOffset); err != nil {
		return bs, fmt.Errorf("start backup: %w", err)
	}
	bs.Timeline = int(tli)
	bs.Time = inOffset(bs.Time, tzOffset)
	return bs, nil
}

// StopBackup ends the backup started on this session and returns the
// backup_label and tablespace_map contents: pg_backup_stop(wait_for_archive
// => true) on PostgreSQL 15 and later, pg_stop_backup(false) on 9.6 to 14.
// Both wait for the last WAL segment to be archived. The timeline is the
// minimum recovery end timeline on a standby, as barman computes it.
func (c *Conn) StopBackup(ctx context.Context) (BackupStop, error) {
	var bs BackupStop
	v, err := c.supported(ctx)
	if err != nil {
		return bs, err
	}
	if v >= 140000 {
		if _, err := c.conn.Exec(ctx, "RESET idle_session_timeout"); err != nil {
			return bs, fmt.Errorf("reset idle_session_timeout: %w", err)
		}
	}
	fn := "pg_backup_stop(wait_for_archive => true)"
	if v < 150000 {
		fn = "pg_stop_backup(false)"
	}
	q := "SELECT end_row.lsn::text, " +
		"(SELECT CASE WHEN pg_is_in_recovery() THEN min_recovery_end_timeline ELSE timeline_id END " +
		"FROM pg_control_checkpoint(), pg_control_recovery()), " +
		"coalesce(end_row.labelfile, ''), coalesce(end_row.spcmapfile, ''), " +
		"now(), EXTRACT(TIMEZONE FROM now())::int FROM " + fn + " AS end_row"
	var tzOffset int
	var tli int32
	err = c.conn.QueryRow(ctx, q).Scan(&bs.LSN, &tli, &bs.LabelFile, &bs.TablespaceMap, &bs.Time, &tzOffset)
	if err != nil {
		return bs, fmt.Errorf("stop backup: %w", err)
	}
	bs.Timeline = int(tli)
	bs.Time = inOffset(bs.Time, tzOffset)
	return bs, nil
}

// inOffset shows t with the session time zone's UTC offset (seconds east),
// as psycopg2 returns now() to barman.
func inOffset(t time.Time, offset int) time.Time {
	return t.In(time.FixedZone("", offset))
}

// SwitchWAL forces a switch to a new WAL segment with pg_switch_wal
// (pg_switch_xlog before 10) and returns the LSN it returned. On a standby
// nothing is done and "" is returned.
func (c *Conn) SwitchWAL(ctx context.Context) (string, error) {
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return "", err
	}
	rec, err := c.IsInRecovery(ctx)
	if err != nil || rec {
		return "", err
	}
	fn := "pg_switch_wal()"
	if v < 100000 {
		fn = "pg_switch_xlog()"
	}
	var lsn string
	if err := c.conn.QueryRow(ctx, "SELECT "+fn+"::text").Scan(&lsn); err != nil {
		return "", fmt.Errorf("switch WAL: %w", err)
	}
	return lsn, nil
}

// CreateRestorePoint creates a named restore point and returns its LSN. On
// a standby, where restore points cannot be created, it does nothing and
// returns "" as barman does.
func (c *Conn) CreateRestorePoint(ctx context.Context, name string) (string, error) {
	rec, err := c.IsInRecovery(ctx)
	if err != nil || rec {
		return "", err
	}
	var lsn string
	if err := c.conn.QueryRow(ctx, "SELECT pg_create_restore_point($1)::text", name).Scan(&lsn); err != nil {
		return "", fmt.Errorf("create restore point %q: %w", name, err)
	}
	return lsn, nil
}

// CurrentWALLSN returns the current WAL write location
// (pg_current_wal_lsn), or the last replayed location on a standby.
func (c *Conn) CurrentWALLSN(ctx context.Context) (string, error) {
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return "", err
	}
	rec, err := c.IsInRecovery(ctx)
	if err != nil {
		return "", err
	}
	var fn string
	switch {
	case rec && v >= 100000:
		fn = "pg_last_wal_replay_lsn()"
	case rec:
		fn = "pg_last_xlog_replay_location()"
	case v >= 100000:
		fn = "pg_current_wal_lsn()"
	default:
		fn = "pg_current_xlog_location()"
	}
	var lsn *string
	if err := c.conn.QueryRow(ctx, "SELECT "+fn+"::text").Scan(&lsn); err != nil {
		return "", fmt.Errorf("query current WAL location: %w", err)
	}
	if lsn == nil {
		return "", nil
	}
	return *lsn, nil
}
