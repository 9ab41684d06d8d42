// Package restore downloads a base backup taken by bcloud or
// barman-cloud-backup into a data directory, as barman-cloud-restore does,
// and optionally writes the recovery settings that make PostgreSQL
// replay archived WAL up to a target on its first start.
package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// ErrNotEmpty reports a target directory that already holds files.
var ErrNotEmpty = errors.New("directory is not empty")

// ErrMissingArchive reports a backup whose data or tablespace archive is
// absent from the store.
var ErrMissingArchive = errors.New("archive missing from the backup")

// DefaultJobs is the number of archives downloaded and extracted at once.
const DefaultJobs = 4

// Progress receives byte counts of the archives downloaded. It must be
// safe for concurrent use.
type Progress interface {
	SetTotal(n int64)
	Add(n int64)
}

// Options configure a restore.
type Options struct {
	Bucket storage.Bucket
	Server string
	// Backup is the backup to restore (see Select).
	Backup catalog.Entry
	// Dest is the data directory to create or fill.
	Dest string
	// Tablespaces relocates tablespaces by name; the others go back to
	// the location recorded in backup.info.
	Tablespaces map[string]string
	// Jobs is the number of archives downloaded and extracted at once.
	Jobs int
	// Force allows non-empty target directories; files there are
	// overwritten.
	Force bool
	// Recovery, when set, writes the recovery settings.
	Recovery *RecoveryTarget
	Progress Progress
}

// job is one archive object to extract into a directory.
type job struct {
	base string // archive name: "data" or a tablespace oid
	key  string
	algo compress.Algorithm
	size int64
	x    *extractor
}

// Restore downloads and extracts the backup. On failure it removes what
// it extracted into directories that were empty (or absent) before, so
// the restore can be retried; with Force the partial content is left and
// the error says so.
func Restore(ctx context.Context, opts Options) error {
	if opts.Backup.Info == nil || opts.Backup.ID == "" {
		return fmt.Errorf("restore: no backup given")
	}
	if opts.Backup.Info.IsSnapshot() {
		return fmt.Errorf("restore backup %s: snapshot backups are not supported by bcloud", opts.Backup.ID)
	}
	if opts.Jobs <= 0 {
		opts.Jobs = DefaultJobs
	}
	if opts.Recovery != nil {
		if err := opts.Recovery.Validate(); err != nil {
			return err
		}
	}
	info := opts.Backup.Info
	id := opts.Backup.ID
	if st := info.StatusValue(); st != catalog.StatusDone {
		slog.WarnContext(ctx, "restoring a backup that is not DONE", "backupId", id, "status", st,
			"error", catalog.Str(info.Error))
	}
	dest, err := filepath.Abs(opts.Dest)
	if err != nil {
		return fmt.Errorf("restore: resolve %s: %w", opts.Dest, err)
	}

	// Target directory of every archive name: data and tablespace oids.
	targets := map[string]string{"data": dest}
	var links [][2]string
	for _, ts := range info.Tablespaces {
		loc := ts.Location
		if reloc, ok := opts.Tablespaces[ts.Name]; ok {
			if loc, err = realPath(reloc); err != nil {
				return fmt.Errorf("restore: tablespace %s location %s: %w", ts.Name, reloc, err)
			}
		}
		oid := strconv.Itoa(ts.OID)
		targets[oid] = loc
		links = append(links, [2]string{filepath.Join(dest, "pg_tblspc", oid), loc})
	}

	jobs, total, err := listArchives(ctx, opts.Bucket, opts.Server, id, targets)
	if err != nil {
		return err
	}

	created, made, err := prepareDirs(targets, opts.Force)
	if err != nil {
		return err
	}
	extractors := map[string]*extractor{}
	for name, dir := range targets {
		extractors[name] = newExtractor(dir)
	}
	for i := range jobs {
		jobs[i].x = extractors[jobs[i].base]
	}
	if opts.Progress != nil {
		opts.Progress.SetTotal(total)
	}
	slog.InfoContext(ctx, "restoring backup", "backupId", id, "serverName", opts.Server,
		"archives", len(jobs), "bytes", total, "destination", dest)

	err = extractAll(ctx, opts, jobs)
	if err == nil {
		for _, x := range extractors {
			if err = x.finish(); err != nil {
				break
			}
		}
	}
	if err == nil {
		// Directories made here for tablespaces belong to the owner of
		// the data directory (set from its archive entry), not to root.
		for _, dir := range made {
			if dir != dest && err == nil {
				err = chownLike(dir, dest)
			}
		}
	}
	if err == nil {
		err = finishLayout(dest, info, links, opts)
	}
	if err != nil {
		return cleanupAfter(err, created, opts.Force, dest)
	}
	return nil
}

// listArchives finds the archives of the backup as barman-cloud-restore
// does: for each name, name.tar[.ext] is the main archive and
// name_<anything>.tar[.ext] are extra parts, extracted in listing order.
func listArchives(ctx context.Context, b storage.Bucket, server, id string, targets map[string]string) ([]job, int64, error) {
	prefix := layout.BackupDir(server, id)
	var mains, parts []job
	hasMain := map[string]bool{}
	var total int64
	err := b.List(ctx, prefix, func(o storage.ObjectInfo) error {
		name := strings.TrimPrefix(o.Key, prefix)
		if strings.Contains(name, "/") {
			return nil
		}
		algo, ok := compress.FromTarName(name)
		if !ok {
			if name != "backup.info" && name != "backup_label" {
				slog.WarnContext(ctx, "skipping unknown file in backup", "key", o.Key)
			}
			return nil
		}
		stem := strings.TrimSuffix(name, ".tar"+algo.TarSuffix())
		for base := range targets {
			switch {
			case stem == base:
				hasMain[base] = true
				mains = append(mains, job{base: base, key: o.Key, algo: algo, size: o.Size})
			case strings.HasPrefix(stem, base+"_"):
				parts = append(parts, job{base: base, key: o.Key, algo: algo, size: o.Size})
			default:
				continue
			}
			total += o.Size
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list backup %s: %w", id, err)
	}
	for base := range targets {
		if !hasMain[base] {
			return nil, 0, fmt.Errorf("restore backup %s: %w: no %s.tar archive under %s", id, ErrMissingArchive, base, prefix)
		}
	}
	return append(mains, parts...), total, nil
}

// prepareDirs checks that every target directory is absent or empty
// (unless force) and creates the missing ones. It returns the directories
// that were absent or empty, which a failed restore may clean up, and the
// ones it created.
func prepareDirs(targets map[string]string, force bool) (cleanable, made []string, err error) {
	for _, dir := range targets {
		entries, err := os.ReadDir(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return cleanable, made, fmt.Errorf("create %s: %w", dir, err)
			}
			made = append(made, dir)
		case err != nil:
			return cleanable, made, fmt.Errorf("read %s: %w", dir, err)
		case len(entries) > 0 && !force:
			return cleanable, made, fmt.Errorf("restore into %s: %w (use --force to restore over it)", dir, ErrNotEmpty)
		case len(entries) > 0:
			continue
		}
		cleanable = append(cleanable, dir)
	}
	return cleanable, made, nil
}

// extractAll downloads and extracts the archives with opts.Jobs workers.
func extractAll(ctx context.Context, opts Options, jobs []job) error {
	g, gctx := errgroup.WithContext(ctx)
	ch := make(chan job)
	for range min(opts.Jobs, max(len(jobs), 1)) {
		g.Go(func() error {
			buf := make([]byte, 1<<20)
			for j := range ch {
				if err := extractOne(gctx, opts, j, buf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(ch)
		for _, j := range jobs {
			select {
			case ch <- j:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	return g.Wait()
}

// extractOne streams one archive object through its decompressor into
// the tar extractor.
func extractOne(ctx context.Context, opts Options, j job, buf []byte) error {
	slog.DebugContext(ctx, "extracting archive", "key", j.key, "target", j.x.root)
	rc, err := opts.Bucket.Get(ctx, j.key, 0, -1)
	if err != nil {
		return fmt.Errorf("download %s: %w", j.key, err)
	}
	ahead := readAhead(ctx, opts.Bucket, j.key, rc)
	defer ahead.stopDownload()
	var src io.Reader = ahead
	if opts.Progress != nil {
		src = &progressReader{r: src, p: opts.Progress}
	}
	dec, err := compress.NewReader(src, j.algo)
	if err != nil {
		return fmt.Errorf("extract %s: %w", j.key, err)
	}
	defer dec.Close()
	if err := j.x.extract(ctx, dec, buf, func(int64) {}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("extract %s (archive corrupt or truncated?): %w", j.key, err)
	}
	// Drain what follows the end-of-archive blocks so that a corrupt
	// compressed tail is noticed.
	if _, err := io.CopyBuffer(io.Discard, dec, buf); err != nil {
		return fmt.Errorf("extract %s (archive corrupt or truncated?): %w", j.key, err)
	}
	return nil
}

type progressReader struct {
	r io.Reader
	p Progress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.p.Add(int64(n))
	}
	return n, err
}

// finishLayout creates what the archives do not hold: the tablespace
// links in pg_tblspc, pg_wal (pg_xlog before 10), and the recovery
// settings.
func finishLayout(dest string, info *catalog.BackupInfo, links [][2]string, opts Options) error {
	if len(links) > 0 {
		if err := os.MkdirAll(filepath.Join(dest, "pg_tblspc"), 0o700); err != nil {
			return fmt.Errorf("create pg_tblspc: %w", err)
		}
	}
	for _, l := range links {
		if opts.Force {
			_ = os.Remove(l[0])
		}
		if err := os.Symlink(l[1], l[0]); err != nil {
			return fmt.Errorf("link tablespace: %w", err)
		}
		if err := chownLike(l[0], dest); err != nil {
			return err
		}
	}
	version := 0
	if info.Version != nil {
		version = *info.Version
	}
	walDir := "pg_wal"
	if version > 0 && version < 100000 {
		walDir = "pg_xlog"
	}
	wp := filepath.Join(dest, walDir)
	if _, err := os.Lstat(wp); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(wp, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", wp, err)
		}
		if err := chownLike(wp, dest); err != nil {
			return err
		}
	}
	if opts.Recovery != nil {
		if err := WriteRecoveryConfig(dest, version, opts.Recovery); err != nil {
			return err
		}
	}
	return nil
}

// cleanupAfter removes the content of the directories the restore filled
// from empty, so that a retry starts clean.
func cleanupAfter(err error, created []string, force bool, dest string) error {
	var failed []string
	for _, dir := range created {
		entries, rerr := os.ReadDir(dir)
		if rerr != nil {
			continue
		}
		for _, e := range entries {
			if rerr := os.RemoveAll(filepath.Join(dir, e.Name())); rerr != nil {
				failed = append(failed, dir)
				break
			}
		}
	}
	switch {
	case len(failed) > 0:
		return fmt.Errorf("%w; the partial restore could not be removed from %s", err, strings.Join(failed, ", "))
	case force:
		return fmt.Errorf("%w; %s holds a partial restore: do not start PostgreSQL on it", err, dest)
	}
	return fmt.Errorf("%w; the partial restore was removed", err)
}

// realPath resolves a relocation target as os.path.realpath does: links
// are resolved for the part that exists.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	existing, rest := abs, ""
	for {
		if r, err := filepath.EvalSymlinks(existing); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			return abs, nil
		}
		rest = path.Join(filepath.Base(existing), rest)
		existing = parent
	}
}

// chownLike gives p (not following links) the owner of ref, when running
// as root.
func chownLike(p, ref string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(ref)
	if err != nil {
		return fmt.Errorf("stat %s: %w", ref, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", p, err)
	}
	return nil
}
