package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// ErrConflict is returned when the archive already holds a different file
// under the same WAL name. Archiving stops so that nothing is overwritten.
var ErrConflict = errors.New("archive already holds a different file with this name")

// maxWALFile bounds what Archive reads into memory: the largest WAL
// segment PostgreSQL allows is 1 GiB.
const maxWALFile = 1 << 30

// Archiver uploads WAL files.
type Archiver struct {
	Bucket      storage.Bucket
	Server      string
	Compression compress.Algorithm
	Level       compress.Level
	// Tags are attached to every WAL object; HistoryTags, when not empty,
	// replace them for .history files (as barman-cloud does).
	Tags        map[string]string
	HistoryTags map[string]string
	// Overwrite replaces an archived file whose content differs instead of
	// failing. Off by default: a different file under the same name means
	// two servers share one archive, or a bug, and must be looked at.
	Overwrite bool
}

// Archive uploads the WAL file at walPath. It succeeds without writing
// when the archive already holds the same content under that name.
func (a *Archiver) Archive(ctx context.Context, walPath string) error {
	name := filepath.Base(walPath)
	kind, err := Classify(name)
	if err != nil {
		return err
	}
	raw, err := readWAL(walPath)
	if err != nil {
		return err
	}
	var body []byte
	if a.Compression == compress.None {
		body = raw
	} else {
		var buf bytes.Buffer
		buf.Grow(len(raw) / 2)
		w, err := compress.NewWriter(&buf, a.Compression, a.Level)
		if err != nil {
			return fmt.Errorf("compress %s: %w", name, err)
		}
		if _, err := w.Write(raw); err != nil {
			return fmt.Errorf("compress %s: %w", name, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("compress %s: %w", name, err)
		}
		body = buf.Bytes()
	}
	key := layout.WALKey(a.Server, name, a.Compression.WALSuffix())
	tags := a.Tags
	if kind == KindHistory && len(a.HistoryTags) > 0 {
		tags = a.HistoryTags
	}
	opts := storage.PutOptions{IfNotExist: true, Tags: tags}
	err = a.Bucket.Put(ctx, key, bytes.NewReader(body), int64(len(body)), opts)
	if err == nil {
		slog.DebugContext(ctx, "archived WAL", "walName", name, "key", key, "bytes", len(body))
		return nil
	}
	if !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	same, err := a.sameContent(ctx, key, raw)
	if err != nil {
		return fmt.Errorf("compare %s with the archived copy: %w", name, err)
	}
	if same {
		slog.InfoContext(ctx, "WAL already archived with identical content", "walName", name, "key", key)
		return nil
	}
	if !a.Overwrite {
		return fmt.Errorf("%s at %s: %w; check that no other server archives to this destination and server name, or pass --overwrite to replace it", name, key, ErrConflict)
	}
	slog.WarnContext(ctx, "overwriting archived WAL with different content", "walName", name, "key", key)
	opts.IfNotExist = false
	if err := a.Bucket.Put(ctx, key, bytes.NewReader(body), int64(len(body)), opts); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

func (a *Archiver) sameContent(ctx context.Context, key string, raw []byte) (bool, error) {
	rc, err := a.Bucket.Get(ctx, key, 0, -1)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	r, err := compress.NewReader(rc, a.Compression)
	if err != nil {
		return false, err
	}
	defer r.Close()
	return readerEquals(r, raw)
}

// readerEquals compares a stream with b without buffering the stream.
func readerEquals(r io.Reader, b []byte) (bool, error) {
	buf := make([]byte, 256<<10)
	for {
		n, err := io.ReadFull(r, buf)
		if n > len(b) || !bytes.Equal(buf[:n], b[:n]) {
			return false, nil
		}
		b = b[n:]
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return len(b) == 0, nil
		}
		if err != nil {
			return false, err
		}
	}
}

func readWAL(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open WAL file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat WAL file: %w", err)
	}
	if st.Size() > maxWALFile {
		return nil, fmt.Errorf("WAL file %s is %d bytes, larger than any WAL segment", p, st.Size())
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read WAL file %s: %w", p, err)
	}
	return data, nil
}

// Batch archives walPath and up to maxParallel-1 other WAL files that
// PostgreSQL has marked ready in pg_wal/archive_status, in parallel. The
// extra files are recorded in the spool so that PostgreSQL's later
// archive_command calls for them return at once (see Spool.TakeArchived).
// The requested file's error is returned; errors on extra files only
// leave them unmarked, so PostgreSQL archives them again itself.
func (a *Archiver) Batch(ctx context.Context, walPath string, maxParallel int, spool *Spool) error {
	name := filepath.Base(walPath)
	if spool != nil {
		done, err := spool.TakeArchived(name)
		if err != nil {
			return err
		}
		if done {
			slog.DebugContext(ctx, "WAL already archived by an earlier parallel batch", "walName", name)
			return nil
		}
	}
	if maxParallel <= 1 || spool == nil {
		return a.Archive(ctx, walPath)
	}
	extra := readyFiles(filepath.Dir(walPath), name, maxParallel-1)
	var wg sync.WaitGroup
	for _, other := range extra {
		unlock, ok := spool.tryLock(other)
		if !ok {
			continue // another process is archiving it right now
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer unlock()
			err := a.Archive(ctx, filepath.Join(filepath.Dir(walPath), other))
			if err == nil {
				err = spool.MarkArchived(other)
			}
			if err != nil {
				slog.WarnContext(ctx, "parallel archive of extra WAL failed; PostgreSQL will retry it", "walName", other, "error", err)
			}
		}()
	}
	unlock, _ := spool.lock(name)
	err := a.Archive(ctx, walPath)
	unlock()
	wg.Wait()
	return err
}

// readyFiles lists up to n WAL files other than skip that have a .ready
// marker in walDir/archive_status, oldest name first.
func readyFiles(walDir, skip string, n int) []string {
	entries, err := os.ReadDir(filepath.Join(walDir, "archive_status"))
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".ready")
		if !ok || base == skip {
			continue
		}
		if _, err := Classify(base); err != nil {
			continue
		}
		names = append(names, base)
	}
	sort.Slice(names, func(i, j int) bool { return walOrder(names[i], names[j]) })
	if len(names) > n {
		names = names[:n]
	}
	return names
}

// walOrder sorts .history files first (PostgreSQL archives them before the
// segments of the new timeline), then by name.
func walOrder(a, b string) bool {
	ha, hb := strings.HasSuffix(a, ".history"), strings.HasSuffix(b, ".history")
	if ha != hb {
		return ha
	}
	return a < b
}
