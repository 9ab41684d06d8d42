package wal

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Spool is a local directory shared by successive archive_command and
// restore_command calls of one server:
//
//	archived/<name>   WAL files a parallel batch already archived
//	locks/<name>      flock files: one archiver per WAL at a time
//	prefetch/<name>   WAL files downloaded ahead of PostgreSQL's request
//	prefetch/<name>.missing  the archive had no such file when prefetching
type Spool struct {
	dir string
}

// OpenSpool creates the spool directories under dir.
func OpenSpool(dir string) (*Spool, error) {
	for _, sub := range []string{"archived", "locks", "prefetch"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("create spool directory: %w", err)
		}
	}
	return &Spool{dir: dir}, nil
}

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// MarkArchived records that name is safely in the archive.
func (s *Spool) MarkArchived(name string) error {
	p := filepath.Join(s.dir, "archived", name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("mark %s archived: %w", name, err)
	}
	return f.Close()
}

// TakeArchived reports whether name was archived by an earlier batch and
// removes the record: PostgreSQL asks for each file once.
func (s *Spool) TakeArchived(name string) (bool, error) {
	err := os.Remove(filepath.Join(s.dir, "archived", name))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("read spool: %w", err)
}

// lockFile takes an flock on locks/<name>. The holder removes the file
// when done; a waiter that then finds its inode unlinked starts over, so
// two holders never overlap.
func (s *Spool) lockFile(name string, how int) (func(), bool) {
	p := filepath.Join(s.dir, "locks", name)
	for range 100 {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return func() {}, false
		}
		if err := syscall.Flock(int(f.Fd()), how); err != nil {
			_ = f.Close()
			return func() {}, false
		}
		held, err1 := f.Stat()
		cur, err2 := os.Stat(p)
		if err1 == nil && err2 == nil && os.SameFile(held, cur) {
			return func() {
				_ = os.Remove(p)
				_ = f.Close()
			}, true
		}
		_ = f.Close()
	}
	return func() {}, false
}

// tryLock takes the per-WAL lock without waiting.
func (s *Spool) tryLock(name string) (func(), bool) {
	return s.lockFile(name, syscall.LOCK_EX|syscall.LOCK_NB)
}

// lock takes the per-WAL lock, waiting for another holder to finish.
func (s *Spool) lock(name string) (func(), bool) {
	return s.lockFile(name, syscall.LOCK_EX)
}

func (s *Spool) prefetchPath(name string) string { return filepath.Join(s.dir, "prefetch", name) }

// takePrefetched moves a prefetched file to dest. It reports false when
// none is spooled.
func (s *Spool) takePrefetched(name, dest string) (bool, error) {
	src := s.prefetchPath(name)
	if _, err := os.Stat(src); err != nil {
		return false, nil
	}
	if err := os.Rename(src, dest); err == nil {
		return true, syncParent(dest)
	}
	// Different file systems: copy durably, then drop the spooled copy.
	if err := copyFile(src, dest); err != nil {
		return false, err
	}
	_ = os.Remove(src)
	return true, nil
}

// takeMissing reports whether a prefetch found name missing, consuming
// the record so that the next request asks the archive again.
func (s *Spool) takeMissing(name string) bool {
	return os.Remove(s.prefetchPath(name)+".missing") == nil
}

func (s *Spool) markMissing(name string) {
	if f, err := os.Create(s.prefetchPath(name) + ".missing"); err == nil {
		_ = f.Close()
	}
}

// clearPrefetch removes every spooled download, e.g. at the start of a
// new recovery when the spool may hold files of an older one.
func (s *Spool) clearPrefetch() {
	entries, _ := os.ReadDir(filepath.Join(s.dir, "prefetch"))
	for _, e := range entries {
		_ = os.Remove(filepath.Join(s.dir, "prefetch", e.Name()))
	}
}

func copyFile(src, dest string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dest + ".bcloud-tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncParent(dest)
}

func syncParent(p string) error {
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
