package wal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Restorer downloads WAL files for PostgreSQL's restore_command.
type Restorer struct {
	Bucket storage.Bucket
	Server string
	// NoPartial ignores .partial files (barman-cloud's --no-partial).
	NoPartial bool
}

// Restore writes the WAL file name to dest. A missing file yields an
// error matching ErrNotFound. dest is written atomically: it either holds
// the whole, verified file or does not exist.
func (r *Restorer) Restore(ctx context.Context, name, dest string) error {
	if _, err := Classify(name); err != nil {
		return err
	}
	key, algo, err := r.locate(ctx, name)
	if err != nil {
		return err
	}
	return r.download(ctx, key, algo, dest)
}

// locate finds the object holding name, as barman-cloud-wal-restore does
// (§2.4 of the format notes), except that a complete segment is preferred
// over a .partial one of the same name.
func (r *Restorer) locate(ctx context.Context, name string) (string, compress.Algorithm, error) {
	dir := path.Join(r.Server, "wals", layout.HashDir(name)) + "/"
	var found, partial string
	var algo, partialAlgo compress.Algorithm
	err := r.Bucket.List(ctx, dir+name, func(o storage.ObjectInfo) error {
		a, base := compress.FromWALName(path.Base(o.Key))
		if !layout.IsWALFile(base) {
			return nil
		}
		switch {
		case strings.HasSuffix(base, ".backup"):
			return nil
		case base == name:
			if found == "" {
				found, algo = o.Key, a
			}
		case base == name+".partial" && !r.NoPartial:
			if partial == "" {
				partial, partialAlgo = o.Key, a
			}
		}
		return nil
	})
	if err != nil {
		return "", "", fmt.Errorf("look up %s: %w", name, err)
	}
	if found != "" {
		return found, algo, nil
	}
	if partial != "" {
		return partial, partialAlgo, nil
	}
	return "", "", fmt.Errorf("%s for server %s: %w", name, r.Server, ErrNotFound)
}

func (r *Restorer) download(ctx context.Context, key string, algo compress.Algorithm, dest string) error {
	_, name := compress.FromWALName(path.Base(key))
	kind, _ := Classify(name)
	rc, err := r.Bucket.Get(ctx, key, 0, -1)
	if err != nil {
		if errors.Is(err, storage.ErrNotExist) {
			return fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return fmt.Errorf("download %s: %w", key, err)
	}
	defer rc.Close()
	dr, err := compress.NewReader(rc, algo)
	if err != nil {
		return fmt.Errorf("decompress %s: %w", key, err)
	}
	defer dr.Close()
	tmp := dest + ".bcloud-tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	n, err := io.Copy(f, storage.ContextReader(ctx, dr))
	if err == nil && kind == KindSegment {
		err = checkRestoredSegment(f, path.Base(dest), name, n)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("restore %s (object is corrupt or the download broke; nothing was written to %s): %w", key, dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("restore %s: %w", key, err)
	}
	return syncParent(dest)
}

// checkRestoredSegment refuses a segment whose size is not a WAL segment
// size or whose first page header names another address: a truncated
// uncompressed object, or the wrong file under this name, must never
// reach PostgreSQL.
func checkRestoredSegment(f *os.File, _ string, name string, size int64) error {
	if !validSegmentSize(size) {
		return fmt.Errorf("%d bytes is not a WAL segment size: the object is truncated", size)
	}
	head := make([]byte, 40)
	if _, err := f.ReadAt(head, 0); err != nil {
		return fmt.Errorf("read page header: %w", err)
	}
	return CheckSegmentHeader(name, head, size)
}

// Prefetcher serves restore_command from a spool and keeps the next
// segments downloading ahead of PostgreSQL.
type Prefetcher struct {
	Restorer *Restorer
	Spool    *Spool
	// MaxParallel is how many files one call fetches: the requested one
	// plus MaxParallel-1 following segments.
	MaxParallel int
}

// Restore serves name from the spool when a previous call prefetched it,
// else downloads it together with the segments that follow.
func (p *Prefetcher) Restore(ctx context.Context, name, dest string) error {
	kind, err := Classify(name)
	if err != nil {
		return err
	}
	if ok, err := p.Spool.takePrefetched(name, dest); err != nil {
		return fmt.Errorf("take %s from spool: %w", name, err)
	} else if ok {
		slog.DebugContext(ctx, "WAL served from prefetch spool", "walName", name)
		return nil
	}
	if p.Spool.takeMissing(name) {
		// A prefetch a moment ago found the end of the archive here.
		// Reporting it lets PostgreSQL switch to streaming; the record is
		// consumed, so the next request asks the archive again.
		return fmt.Errorf("%s for server %s (end of archived WAL): %w", name, p.Restorer.Server, ErrNotFound)
	}
	if kind != KindSegment || p.MaxParallel <= 1 {
		return p.Restorer.Restore(ctx, name, dest)
	}
	// A request outside what the spool holds means a new recovery run or
	// a timeline switch: drop stale downloads before fetching afresh.
	p.Spool.clearPrefetch()
	if err := p.Restorer.Restore(ctx, name, dest); err != nil {
		return err
	}
	st, err := os.Stat(dest)
	if err != nil || !validSegmentSize(st.Size()) {
		return nil // not a full segment (a .partial served): no prefetch
	}
	seg, _ := ParseSegment(name)
	p.prefetch(ctx, seg, st.Size())
	return nil
}

// prefetch downloads the MaxParallel-1 segments after seg into the spool.
// Failures are not errors: PostgreSQL will ask for the file again.
func (p *Prefetcher) prefetch(ctx context.Context, seg Segment, segSize int64) {
	var wg sync.WaitGroup
	next := seg
	for range p.MaxParallel - 1 {
		next = next.Next(segSize)
		name := next.Name()
		wg.Add(1)
		go func() {
			defer wg.Done()
			dest := p.Spool.prefetchPath(name)
			err := p.Restorer.Restore(ctx, name, dest)
			switch {
			case err == nil:
			case errors.Is(err, ErrNotFound):
				p.Spool.markMissing(name)
			default:
				slog.DebugContext(ctx, "prefetch failed", "walName", name, "error", err)
			}
		}()
	}
	wg.Wait()
	// A missing segment ends the archive for now: files spooled after it
	// may come from a stale copy, so keep only those before the gap.
	gap := false
	next = seg
	for range p.MaxParallel - 1 {
		next = next.Next(segSize)
		path := p.Spool.prefetchPath(next.Name())
		if gap {
			_ = os.Remove(path)
			_ = os.Remove(path + ".missing")
			continue
		}
		if _, err := os.Stat(path + ".missing"); err == nil {
			gap = true
		}
	}
}

func validSegmentSize(n int64) bool {
	return n >= 1<<20 && n <= 1<<30 && n&(n-1) == 0
}

// SpoolDirFor returns the default spool directory for the server whose
// WAL directory holds walPath: under the system temporary directory, one
// per data directory. It must not live inside PGDATA, where base backups
// would copy it. Losing it is harmless: archived files are archived again
// (identical content is accepted) and prefetches are repeated.
func SpoolDirFor(walPath string) string {
	abs, err := filepath.Abs(filepath.Dir(walPath))
	if err != nil {
		abs = filepath.Dir(walPath)
	}
	sum := sha256.Sum256([]byte(filepath.Dir(abs)))
	return filepath.Join(os.TempDir(), "bcloud-spool-"+hex.EncodeToString(sum[:6]))
}
