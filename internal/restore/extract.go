package restore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ErrUnsafePath reports an archive member whose name or link would write
// outside the target directory.
var ErrUnsafePath = errors.New("unsafe path in archive")

// CleanName turns an archive member name into a path relative to the
// target directory: "./x", "x" and "x/" are all "x", and "." or "./" is
// the target directory itself ("."). Absolute names, ".." components and
// NUL bytes are rejected with ErrUnsafePath.
func CleanName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: %q", ErrUnsafePath, name)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %q is absolute", ErrUnsafePath, name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: %q leaves the target directory", ErrUnsafePath, name)
		}
	}
	return path.Clean(name), nil
}

// extractor writes archive members into one target directory. It is safe
// for concurrent use by several archives extracting into the same target:
// directories are created as needed and their modes and times are applied
// by finish, once every file is in place.
type extractor struct {
	root  string
	chown bool

	mu   sync.Mutex
	dirs map[string]bool // relative directories known to be real directories
	// dirMeta holds the mode and mtime of directory members, applied at the end.
	dirMeta map[string]*tar.Header
	ids     map[string]int
}

func newExtractor(root string) *extractor {
	return &extractor{
		root:    root,
		chown:   os.Geteuid() == 0,
		dirs:    map[string]bool{".": true},
		dirMeta: map[string]*tar.Header{},
		ids:     map[string]int{},
	}
}

// extract reads the tar stream r and writes its members. buf is the copy
// buffer.
func (x *extractor) extract(ctx context.Context, r io.Reader, buf []byte, progress func(int64)) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := x.member(h, tr, buf, progress); err != nil {
			return err
		}
	}
}

// member writes one archive entry.
func (x *extractor) member(h *tar.Header, r io.Reader, buf []byte, progress func(int64)) error {
	rel, err := CleanName(h.Name)
	if err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := x.mkdirAll(rel); err != nil {
			return err
		}
		x.mu.Lock()
		x.dirMeta[rel] = h
		x.mu.Unlock()
		return nil
	case tar.TypeReg, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	default:
		// Devices and other special files have no place in a data directory.
		return nil
	}
	if rel == "." {
		return fmt.Errorf("%w: %q is not a directory entry", ErrUnsafePath, h.Name)
	}
	if err := x.mkdirAll(path.Dir(rel)); err != nil {
		return err
	}
	target := filepath.Join(x.root, filepath.FromSlash(rel))
	if err := x.clear(rel, target); err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeSymlink:
		if err := os.Symlink(h.Linkname, target); err != nil {
			return fmt.Errorf("create symlink %s: %w", target, err)
		}
		return x.lchown(target, h)
	case tar.TypeLink:
		lrel, err := CleanName(h.Linkname)
		if err != nil {
			return err
		}
		if err := x.checkParents(lrel); err != nil {
			return err
		}
		if err := os.Link(filepath.Join(x.root, filepath.FromSlash(lrel)), target); err != nil {
			return fmt.Errorf("create hard link %s: %w", target, err)
		}
		return nil
	case tar.TypeFifo:
		if err := syscall.Mkfifo(target, uint32(h.Mode&0o7777)); err != nil {
			return fmt.Errorf("create fifo %s: %w", target, err)
		}
		return x.attrs(target, h)
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", target, err)
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, struct{ io.Reader }{r}, buf)
	progress(n)
	if err != nil {
		_ = f.Close()
		if errors.Is(err, io.ErrUnexpectedEOF) || isReadErr(err) {
			return fmt.Errorf("read archive member %s: %w", h.Name, err)
		}
		return fmt.Errorf("write %s: %w", target, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	return x.attrs(target, h)
}

// isReadErr reports errors that come from the archive stream, not the disk.
func isReadErr(err error) bool {
	var pe *fs.PathError
	return !errors.As(err, &pe)
}

// clear removes a non-directory entry already at target (an earlier
// member of the same name), as tar does.
func (x *extractor) clear(rel, target string) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", target, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("extract %s: a directory is in the way", target)
	}
	if err := os.Remove(target); err != nil {
		return fmt.Errorf("replace %s: %w", target, err)
	}
	x.mu.Lock()
	delete(x.dirs, rel)
	x.mu.Unlock()
	return nil
}

// mkdirAll makes sure rel and its parents are real directories under the
// root, never following a symbolic link: a member that would be written
// through a link (e.g. "x" -> "/etc" then "x/passwd") fails with
// ErrUnsafePath.
func (x *extractor) mkdirAll(rel string) error {
	if rel == "." {
		return nil
	}
	x.mu.Lock()
	known := x.dirs[rel]
	x.mu.Unlock()
	if known {
		return nil
	}
	if err := x.mkdirAll(path.Dir(rel)); err != nil {
		return err
	}
	p := filepath.Join(x.root, filepath.FromSlash(rel))
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory %s: %w", p, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("stat %s: %w", p, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %q is not a directory (a link or file is in the way)", ErrUnsafePath, rel)
	}
	x.mu.Lock()
	x.dirs[rel] = true
	x.mu.Unlock()
	return nil
}

// checkParents verifies that the parents of rel are real directories.
func (x *extractor) checkParents(rel string) error {
	dir := path.Dir(rel)
	for dir != "." {
		fi, err := os.Lstat(filepath.Join(x.root, filepath.FromSlash(dir)))
		if err != nil {
			return fmt.Errorf("stat %s: %w", dir, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: %q is not a directory", ErrUnsafePath, dir)
		}
		dir = path.Dir(dir)
	}
	return nil
}

// attrs applies owner, mode and mtime of a member, as tarfile does.
func (x *extractor) attrs(target string, h *tar.Header) error {
	if err := x.lchown(target, h); err != nil {
		return err
	}
	if err := os.Chmod(target, fs.FileMode(h.Mode&0o777)|modeBits(h.Mode)); err != nil {
		return fmt.Errorf("chmod %s: %w", target, err)
	}
	if err := os.Chtimes(target, h.ModTime, h.ModTime); err != nil {
		return fmt.Errorf("set times of %s: %w", target, err)
	}
	return nil
}

func modeBits(m int64) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// lchown gives the entry the member's owner when running as root, by name
// when the name exists here, else by number (tarfile's default).
func (x *extractor) lchown(target string, h *tar.Header) error {
	if !x.chown {
		return nil
	}
	uid, gid := x.id("u:"+h.Uname, h.Uid), x.id("g:"+h.Gname, h.Gid)
	if err := os.Lchown(target, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", target, err)
	}
	return nil
}

func (x *extractor) id(key string, fallback int) int {
	if len(key) == 2 {
		return fallback
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if v, ok := x.ids[key]; ok {
		if v < 0 {
			return fallback
		}
		return v
	}
	v := -1
	if key[0] == 'u' {
		if u, err := user.Lookup(key[2:]); err == nil {
			v, _ = strconv.Atoi(u.Uid)
		}
	} else if g, err := user.LookupGroup(key[2:]); err == nil {
		v, _ = strconv.Atoi(g.Gid)
	}
	x.ids[key] = v
	if v < 0 {
		return fallback
	}
	return v
}

// finish applies the directory members' owners, modes and mtimes, deepest
// first so that setting a child does not change its parent's mtime.
func (x *extractor) finish() error {
	rels := make([]string, 0, len(x.dirMeta))
	for rel := range x.dirMeta {
		rels = append(rels, rel)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(rels)))
	for _, rel := range rels {
		if err := x.attrs(filepath.Join(x.root, filepath.FromSlash(rel)), x.dirMeta[rel]); err != nil {
			return err
		}
	}
	return nil
}
