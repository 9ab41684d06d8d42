// Package backup takes online base backups of a PostgreSQL server into
// object storage in barman-cloud-backup's format: one tar archive per
// tablespace and one for PGDATA (optionally split into parts and
// compressed), streamed straight from the data directory into the store,
// then backup.info, written last.
package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/postgres"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Archive size limits of barman-cloud-backup.
const (
	DefaultMaxArchiveSize int64 = 100 << 30 // 100GB (check_size base 1024)
	MaxArchiveSize        int64 = 1 << 40   // MAX_ARCHIVE_SIZE, 1 TiB
	DefaultJobs                 = 2
)

// ErrConnect marks a failure to connect to PostgreSQL (no backup.info is
// written: nothing was started).
var ErrConnect = errors.New("connect to PostgreSQL")

// Options configure a backup.
type Options struct {
	Bucket storage.Bucket
	Server string
	// ConnInfo is a libpq connection string (see postgres.BuildConnInfo).
	ConnInfo string
	// Name is the optional backup name (backup_name).
	Name        string
	Compression compress.Algorithm
	// Level is the compression level; the zero value is medium.
	Level compress.Level
	// Jobs is the number of archive parts written and uploaded at once
	// (default 2).
	Jobs int
	// MaxArchiveSize closes an archive part once it has emitted more
	// bytes, and continues in name_0001.tar, ... (default 100GB, at most
	// 1 TiB).
	MaxArchiveSize int64
	// MinChunkSize is barman's multipart chunk floor. It is accepted for
	// compatibility: the storage drivers size their parts themselves.
	MinChunkSize        int64
	ImmediateCheckpoint bool
	// Tags are attached to every uploaded object.
	Tags map[string]string
	// Now returns the local time that names the backup (default time.Now).
	Now func() time.Time
	// Progress, when set, receives byte counts of the data archived.
	Progress Progress
}

// Take runs a backup and returns its ID and backup.info. On a failure
// after the backup started, a backup.info with status FAILED and the
// error is stored, as barman-cloud-backup does, and the error is returned
// with the entry; when nothing was started the entry's Info is nil. A
// process killed mid-backup leaves no backup.info, so the partial backup
// is never listed as usable; the server ends the backup mode when the
// session drops.
func Take(ctx context.Context, opts Options) (catalog.Entry, error) {
	if err := opts.check(); err != nil {
		return catalog.Entry{}, err
	}
	conn, err := postgres.Connect(ctx, opts.ConnInfo)
	if err != nil {
		return catalog.Entry{}, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	// Closing the session also ends a backup left running by a failure.
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	t := &taker{opts: opts, conn: conn, copyStart: time.Now()}
	t.id = catalog.NewBackupID(opts.Now())
	infoKey := layout.BackupInfoKey(opts.Server, t.id)
	entry := catalog.Entry{ID: t.id}
	if _, err := opts.Bucket.Stat(ctx, infoKey); err == nil {
		return entry, fmt.Errorf("start backup %s: a backup with this id already exists", t.id)
	} else if !errors.Is(err, storage.ErrNotExist) {
		return entry, fmt.Errorf("check backup %s: %w", t.id, err)
	}
	slog.InfoContext(ctx, "starting backup", "backupId", t.id, "serverName", opts.Server)
	// A backup killed earlier may have left unfinished multipart uploads,
	// which S3 keeps (and bills) until aborted. One backup per server runs
	// at a time, so every upload under base/ started before this one is
	// such a leftover.
	if n, err := storage.AbortUploads(ctx, opts.Bucket, layout.BaseDir(opts.Server), t.copyStart); err != nil {
		slog.WarnContext(ctx, "could not abort uploads left by an interrupted backup", "error", err)
	} else if n > 0 {
		slog.InfoContext(ctx, "aborted uploads left by an interrupted backup", "uploads", n)
	}

	runErr := t.run(ctx)
	if runErr != nil && t.stop == nil {
		// Leave backup mode now: the server aborts the backup of a
		// session that ends.
		_ = conn.Close(context.WithoutCancel(ctx))
	}
	info := t.info()
	entry.Info = info
	if runErr != nil {
		info.Status = ptr(catalog.StatusFailed)
		info.Error = ptr("failure uploading data (" + firstLine(runErr.Error()) + ")")
		slog.ErrorContext(ctx, "backup failed", "backupId", t.id, "error", firstLine(runErr.Error()))
	}
	// backup.info is stored even when ctx was cancelled (as barman does on
	// an interrupt), within a bounded time.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := t.putInfo(wctx, info); err != nil {
		if runErr != nil {
			return entry, fmt.Errorf("backup %s: %w (and %w)", t.id, runErr, err)
		}
		info.Status = ptr(catalog.StatusFailed)
		return entry, fmt.Errorf("backup %s: %w", t.id, err)
	}
	if runErr != nil {
		return entry, fmt.Errorf("backup %s: %w", t.id, runErr)
	}
	slog.InfoContext(ctx, "backup completed", "backupId", t.id,
		"beginWAL", catalog.Str(info.BeginWAL), "endWAL", catalog.Str(info.EndWAL))
	return entry, nil
}

func (o *Options) check() error {
	if o.Bucket == nil || o.Server == "" {
		return fmt.Errorf("backup: a bucket and a server name are required")
	}
	if o.Name != "" {
		if err := catalog.CheckBackupName(o.Name); err != nil {
			return err
		}
	}
	if !o.Compression.Valid() {
		return fmt.Errorf("backup: unknown compression %q", string(o.Compression))
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if o.MaxArchiveSize <= 0 {
		o.MaxArchiveSize = DefaultMaxArchiveSize
	}
	if o.MaxArchiveSize > MaxArchiveSize {
		slog.Warn("max archive size is above the limit: using 1TiB", "requested", o.MaxArchiveSize)
		o.MaxArchiveSize = MaxArchiveSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// taker holds the state of one backup.
type taker struct {
	opts      Options
	conn      *postgres.Conn
	id        string
	meta      postgres.Metadata
	metaOK    bool
	start     *postgres.BackupStart
	stop      *postgres.BackupStop
	copyStart time.Time
	copyEnd   time.Time
	archives  []*archive
}

// run performs the backup proper: everything barman does inside its
// try block.
func (t *taker) run(ctx context.Context) (err error) {
	upCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	s := &sink{
		bucket: t.opts.Bucket, server: t.opts.Server, backupID: t.id,
		algo: t.opts.Compression, level: t.opts.Level, tags: t.opts.Tags,
		maxSize: t.opts.MaxArchiveSize, jobs: t.opts.Jobs,
		progress: &counter{p: t.opts.Progress}, ctx: upCtx, fail: fail,
	}
	defer func() {
		if err != nil {
			// Abort every upload still running: no partial object remains.
			fail(err)
			for _, a := range t.archives {
				a.abort(err)
			}
		}
	}()

	if t.meta, err = t.conn.Metadata(ctx); err != nil {
		return err
	}
	t.metaOK = true
	if t.opts.Progress != nil {
		t.opts.Progress.SetTotal(t.meta.ClusterSize)
	}
	pgdata := t.meta.PGData
	if real, err := filepath.EvalSymlinks(pgdata); err == nil {
		pgdata = real
	}
	if _, err := os.Stat(filepath.Join(pgdata, "global", "pg_control")); err != nil {
		return fmt.Errorf("read PGDATA %s (bcloud backup must run on the database host): %w", pgdata, err)
	}

	label := "Barman backup cloud " + t.id
	bs, err := t.conn.StartBackup(ctx, label, t.opts.ImmediateCheckpoint)
	if err != nil {
		return err
	}
	t.start = &bs

	// Tablespaces first, one archive each, then PGDATA.
	var tsOIDs []uint32
	var inside []string
	for _, ts := range t.meta.Tablespaces {
		tsOIDs = append(tsOIDs, ts.OID)
		if strings.HasPrefix(ts.Location, t.meta.PGData+"/") {
			inside = append(inside, ts.Location[len(t.meta.PGData):])
		}
		a := newArchive(s, strconv.FormatUint(uint64(ts.OID), 10))
		t.archives = append(t.archives, a)
		f, err := TablespaceFilter(majorVersion(t.meta.Version))
		if err != nil {
			return err
		}
		slog.InfoContext(ctx, "uploading tablespace", "tablespace", ts.Name, "location", ts.Location, "oid", ts.OID)
		if err := a.run(upCtx, func(emit func(*member) error) error {
			return walk(upCtx, ts.Location, f, emit)
		}); err != nil {
			return t.cause(upCtx, err)
		}
		if err := a.close(); err != nil {
			return t.cause(upCtx, err)
		}
	}

	data := newArchive(s, "data")
	t.archives = append(t.archives, data)
	f, err := PGDataFilter(tsOIDs, inside)
	if err != nil {
		return err
	}
	slog.InfoContext(ctx, "uploading PGDATA", "pgdata", pgdata)
	if err := data.run(upCtx, func(emit func(*member) error) error {
		return walk(upCtx, pgdata, f, emit)
	}); err != nil {
		return t.cause(upCtx, err)
	}
	buf := make([]byte, copyBuffer)
	// pg_control goes after the walk, then the configuration files kept
	// outside PGDATA.
	extra := []*member{{name: "global/pg_control", path: filepath.Join(pgdata, "global", "pg_control")}}
	for _, cf := range t.externalConfig() {
		extra = append(extra, &member{name: filepath.Base(cf), path: cf})
	}
	for _, m := range extra {
		if err := data.add(upCtx, 0, m, buf); err != nil {
			return t.cause(upCtx, err)
		}
	}

	stop, err := t.conn.StopBackup(ctx)
	if err != nil {
		return err
	}
	t.stop = &stop
	if _, err := t.conn.SwitchWAL(ctx); err != nil {
		return err
	}
	if _, err := t.conn.CreateRestorePoint(ctx, "barman_"+t.id); err != nil {
		return err
	}
	if err := data.add(upCtx, 0, t.labelMember(pgdata, stop.LabelFile), buf); err != nil {
		return t.cause(upCtx, err)
	}
	if err := data.close(); err != nil {
		return t.cause(upCtx, err)
	}
	t.copyEnd = time.Now()
	return nil
}

// cause prefers the upload failure that cancelled the work over the
// cancellation error it produced.
func (t *taker) cause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// externalConfig lists config_file, hba_file and ident_file when they are
// outside PGDATA (a missing ident_file is tolerated) and warns about
// included files outside PGDATA, which are not copied.
func (t *taker) externalConfig() []string {
	var out []string
	for _, c := range []struct {
		path     string
		optional bool
	}{{t.meta.ConfigFile, false}, {t.meta.HBAFile, false}, {t.meta.IdentFile, true}} {
		if c.path == "" || strings.HasPrefix(c.path, t.meta.PGData) {
			continue
		}
		if c.optional {
			if _, err := os.Stat(c.path); err != nil {
				continue
			}
		}
		out = append(out, c.path)
	}
	var outside []string
	for _, f := range t.meta.IncludedFiles {
		if !strings.HasPrefix(f, t.meta.PGData) {
			outside = append(outside, f)
		}
	}
	if len(outside) > 0 {
		slog.Warn("include directives are not supported for files outside PGDATA: back these files up yourself",
			"files", strings.Join(outside, ", "))
	}
	return out
}

// labelMember is the backup_label entry, built from pg_backup_stop's
// labelfile with mode 0644 and mtime 0 as barman adds it, owned like PGDATA.
func (t *taker) labelMember(pgdata, label string) *member {
	m := &member{name: "backup_label", data: []byte(label)}
	h := labelHeader()
	if fi, err := os.Stat(pgdata); err == nil {
		if ph, err := t.ownerHeader(fi); err == nil {
			h.Uid, h.Gid, h.Uname, h.Gname = ph.Uid, ph.Gid, ph.Uname, ph.Gname
		}
	}
	m.hdr = h
	return m
}

// majorVersion is barman's server_major_version: "15", or "9.6".
func majorVersion(v int) string {
	if v >= 100000 {
		return strconv.Itoa(v / 10000)
	}
	return fmt.Sprintf("%d.%d", v/10000, v/100%100)
}

// firstLine returns the first line of a message, as barman records errors.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
