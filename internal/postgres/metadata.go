package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Tablespace is a user tablespace with a location (pg_tablespace rows whose
// pg_tablespace_location is not empty).
type Tablespace struct {
	Name     string
	OID      uint32
	Location string
}

// Metadata is what barman-cloud-backup reads from the server before a
// backup (backup.info fields pgdata, version, xlog_segment_size,
// config_file, hba_file, ident_file, included_files, tablespaces,
// data_checksums, summarize_wal, cluster_size, systemid).
type Metadata struct {
	PGData        string
	Version       int
	SegmentSize   int64
	ConfigFile    string
	HBAFile       string
	IdentFile     string
	IncludedFiles []string // sorted; nil when none
	Tablespaces   []Tablespace
	DataChecksums string  // "on" or "off"
	SummarizeWAL  *string // nil before PostgreSQL 17
	ClusterSize   int64
	SystemID      string
	IsInRecovery  bool
}

// Metadata runs barman's metadata queries.
func (c *Conn) Metadata(ctx context.Context) (Metadata, error) {
	var m Metadata
	var err error
	if m.Version, err = c.supported(ctx); err != nil {
		return m, err
	}
	if m.PGData, err = c.show(ctx, "data_directory"); err != nil {
		return m, err
	}
	if m.SegmentSize, err = c.segmentSize(ctx, m.Version); err != nil {
		return m, err
	}
	if err := c.configFiles(ctx, &m); err != nil {
		return m, err
	}
	if m.Tablespaces, err = c.tablespaces(ctx); err != nil {
		return m, err
	}
	if m.DataChecksums, err = c.show(ctx, "data_checksums"); err != nil {
		return m, err
	}
	if m.Version >= 170000 {
		s, err := c.show(ctx, "summarize_wal")
		if err != nil {
			return m, err
		}
		m.SummarizeWAL = &s
	}
	err = c.conn.QueryRow(ctx, "SELECT coalesce(sum(pg_tablespace_size(oid)), 0)::bigint FROM pg_tablespace").Scan(&m.ClusterSize)
	if err != nil {
		return m, fmt.Errorf("query cluster size: %w", err)
	}
	err = c.conn.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&m.SystemID)
	if err != nil {
		return m, fmt.Errorf("query system identifier: %w", err)
	}
	if m.IsInRecovery, err = c.IsInRecovery(ctx); err != nil {
		return m, err
	}
	return m, nil
}

// show returns a setting as SHOW prints it.
func (c *Conn) show(ctx context.Context, name string) (string, error) {
	var s string
	q := `SHOW "` + strings.ReplaceAll(name, `"`, `""`) + `"`
	if err := c.conn.QueryRow(ctx, q).Scan(&s); err != nil {
		return "", fmt.Errorf("show %s: %w", name, err)
	}
	return s, nil
}

// setting returns pg_settings.setting (raw units, not SHOW's "16MB").
func (c *Conn) setting(ctx context.Context, name string) (string, error) {
	var s string
	err := c.conn.QueryRow(ctx, "SELECT setting FROM pg_settings WHERE name = $1", name).Scan(&s)
	if err != nil {
		return "", fmt.Errorf("query setting %s: %w", name, err)
	}
	return s, nil
}

// segmentSize returns the WAL segment size in bytes; before PostgreSQL 11
// pg_settings gives it in WAL blocks.
func (c *Conn) segmentSize(ctx context.Context, version int) (int64, error) {
	s, err := c.setting(ctx, "wal_segment_size")
	if err != nil {
		return 0, err
	}
	size, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse wal_segment_size %q: %w", s, err)
	}
	if version < 110000 {
		b, err := c.setting(ctx, "wal_block_size")
		if err != nil {
			return 0, err
		}
		block, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse wal_block_size %q: %w", b, err)
		}
		size *= block
	}
	return size, nil
}

// configFiles fills the configuration file paths and the files included
// from postgresql.conf.
func (c *Conn) configFiles(ctx context.Context, m *Metadata) error {
	rows, err := c.conn.Query(ctx, "SELECT name, setting FROM pg_settings WHERE name IN ('config_file', 'hba_file', 'ident_file')")
	if err != nil {
		return fmt.Errorf("query configuration files: %w", err)
	}
	for rows.Next() {
		var name, setting string
		if err := rows.Scan(&name, &setting); err != nil {
			rows.Close()
			return fmt.Errorf("read configuration files: %w", err)
		}
		switch name {
		case "config_file":
			m.ConfigFile = setting
		case "hba_file":
			m.HBAFile = setting
		case "ident_file":
			m.IdentFile = setting
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read configuration files: %w", err)
	}
	rows, err = c.conn.Query(ctx, "SELECT DISTINCT sourcefile AS included_file FROM pg_settings "+
		"WHERE sourcefile IS NOT NULL AND sourcefile NOT IN "+
		"(SELECT setting FROM pg_settings WHERE name = 'config_file') ORDER BY 1")
	if err != nil {
		return fmt.Errorf("query included files: %w", err)
	}
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			rows.Close()
			return fmt.Errorf("read included files: %w", err)
		}
		m.IncludedFiles = append(m.IncludedFiles, f)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read included files: %w", err)
	}
	return nil
}

// tablespaces lists the tablespaces that have a location, as barman does.
func (c *Conn) tablespaces(ctx context.Context) ([]Tablespace, error) {
	rows, err := c.conn.Query(ctx, "SELECT spcname::text, oid, pg_tablespace_location(oid) AS spclocation "+
		"FROM pg_tablespace WHERE pg_tablespace_location(oid) != ''")
	if err != nil {
		return nil, fmt.Errorf("query tablespaces: %w", err)
	}
	var out []Tablespace
	for rows.Next() {
		var ts Tablespace
		if err := rows.Scan(&ts.Name, &ts.OID, &ts.Location); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read tablespaces: %w", err)
		}
		out = append(out, ts)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tablespaces: %w", err)
	}
	return out, nil
}
