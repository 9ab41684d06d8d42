// Package fs stores objects as files under a local directory (file:// URLs).
// It is the embedded default. Every write is atomic and durable: temporary
// file, fsync, rename (or link for conditional puts), fsync of the directory.
package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Config configures the fs driver.
type Config struct {
	// Root is the directory holding the objects. It is created if missing.
	Root string
}

const tmpPrefix = ".bcloud-tmp-"

// Bucket is a storage.Bucket on a local directory.
type Bucket struct {
	root string
}

var _ storage.Bucket = (*Bucket)(nil)

// Open returns a bucket rooted at cfg.Root, creating the directory.
func Open(cfg Config) (*Bucket, error) {
	if cfg.Root == "" {
		return nil, errors.New("file destination has no path: use file:///absolute/path")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", cfg.Root, err)
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	return &Bucket{root: root}, nil
}

func (b *Bucket) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return "", fmt.Errorf("invalid object key %q: must be non-empty with no leading or trailing slash", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, tmpPrefix) {
			return "", fmt.Errorf("invalid object key %q: empty, dot or reserved path segment", key)
		}
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

// Put implements storage.Bucket.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts storage.PutOptions) (err error) {
	dst, err := b.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(dst)
	if opts.IfNotExist {
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("put %s: %w", key, storage.ErrExists)
		}
	}
	f, tmp, err := createTemp(dir)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, storage.ContextReader(ctx, r))
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("put %s: read %d bytes, expected %d", key, n, size)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("put %s: sync: %w", key, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err = ctx.Err(); err != nil {
		return err
	}
	if opts.IfNotExist {
		// link(2) fails with EEXIST when dst is taken: check and write in one step.
		if err = os.Link(tmp, dst); err != nil {
			if errors.Is(err, iofs.ErrExist) {
				err = fmt.Errorf("put %s: %w", key, storage.ErrExists)
				return err
			}
			return fmt.Errorf("put %s: %w", key, err)
		}
		_ = os.Remove(tmp)
	} else if err = os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("put %s: sync directory: %w", key, err)
	}
	return nil
}

// Get implements storage.Bucket.
func (b *Bucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, wrapNotExist("get", key, err)
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		_ = f.Close()
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("get %s: %w", key, err)
		}
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// Stat implements storage.Bucket.
func (b *Bucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	p, err := b.path(key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return storage.ObjectInfo{}, wrapNotExist("stat", key, err)
	}
	if st.IsDir() {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
	}
	return storage.ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// List implements storage.Bucket. It collects the matching keys, sorts
// them bytewise (directory walk order is not key order) and calls fn.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	start := b.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(b.root, filepath.FromSlash(prefix[:i]))
	}
	var infos []storage.ObjectInfo
	err := filepath.WalkDir(start, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		infos = append(infos, storage.ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, in := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements storage.Bucket. Emptied directories are removed.
func (b *Bucket) Delete(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := b.path(key)
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		for dir := filepath.Dir(p); dir != b.root && strings.HasPrefix(dir, b.root); dir = filepath.Dir(dir) {
			if os.Remove(dir) != nil {
				break
			}
		}
	}
	return nil
}

// Properties implements storage.Bucket.
func (b *Bucket) Properties() storage.Properties {
	return storage.Properties{Name: "fs", ConditionalPut: true, DeleteBatch: 1}
}

// Close implements storage.Bucket.
func (b *Bucket) Close() error { return nil }

// createTemp creates a temporary file in dir, creating dir first. A
// concurrent Delete may remove an emptied dir between the two steps, so
// the pair is retried a few times.
func createTemp(dir string) (*os.File, string, error) {
	var err error
	for range 3 {
		if err = os.MkdirAll(dir, 0o750); err != nil {
			return nil, "", err
		}
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		tmp := filepath.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:]))
		var f *os.File
		f, err = os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if err == nil {
			return f, tmp, nil
		}
		if !errors.Is(err, iofs.ErrNotExist) {
			return nil, "", err
		}
	}
	return nil, "", err
}

func wrapNotExist(op, key string, err error) error {
	if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%s %s: %w", op, key, storage.ErrNotExist)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
