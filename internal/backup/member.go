package backup

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// member is one archive entry: a file or directory on disk (path set), or
// in-memory content (data set, e.g. backup_label).
type member struct {
	name string // archive member name, e.g. "./PG_VERSION", "base/1/1259"
	path string // source path on disk; "" for in-memory content
	data []byte // content when path is ""
	hdr  *tar.Header
}

// errVanished reports that a file or directory disappeared during the
// backup; such entries are skipped, as WAL replay recreates them.
var errVanished = errors.New("vanished")

// owners caches uid and gid to name lookups (Python tarfile records uname
// and gname from pwd and grp).
type owners struct {
	mu     sync.Mutex
	users  map[int]string
	groups map[int]string
}

func (o *owners) user(uid int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n, ok := o.users[uid]; ok {
		return n
	}
	if o.users == nil {
		o.users = map[int]string{}
	}
	name := ""
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
	}
	o.users[uid] = name
	return name
}

func (o *owners) group(gid int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n, ok := o.groups[gid]; ok {
		return n
	}
	if o.groups == nil {
		o.groups = map[int]string{}
	}
	name := ""
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		name = g.Name
	}
	o.groups[gid] = name
	return name
}

// header builds the tar header of a file system entry from its lstat
// result, as Python tarfile.gettarinfo does: permission bits, owner ids
// and names, mtime with sub-second precision (kept in PAX records),
// directories named with a trailing "/", symlinks stored as links. It
// returns nil for entries tarfile skips (sockets, devices).
func (o *owners) header(name, path string, fi fs.FileInfo) (*tar.Header, error) {
	h := &tar.Header{
		Name:    name,
		Mode:    int64(fi.Mode().Perm()),
		ModTime: fi.ModTime(),
		Format:  tar.FormatPAX,
	}
	if fi.Mode()&fs.ModeSetuid != 0 {
		h.Mode |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		h.Mode |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		h.Mode |= 0o1000
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		h.Uname, h.Gname = o.user(h.Uid), o.group(h.Gid)
	}
	switch {
	case fi.Mode().IsRegular():
		h.Typeflag = tar.TypeReg
		h.Size = fi.Size()
	case fi.IsDir():
		h.Typeflag = tar.TypeDir
		if name != "" && name[len(name)-1] != '/' {
			h.Name += "/"
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return nil, err
		}
		h.Typeflag = tar.TypeSymlink
		h.Linkname = target
	case fi.Mode()&fs.ModeNamedPipe != 0:
		h.Typeflag = tar.TypeFifo
	default:
		return nil, nil
	}
	return h, nil
}

// open prepares a member for writing: it takes the lstat of the source
// (errVanished when it is gone) and, for regular files, opens it before
// anything is written so that a vanished file leaves no trace.
func (o *owners) open(m *member) (*tar.Header, io.ReadCloser, error) {
	if m.path == "" {
		h := m.hdr
		if h == nil {
			h = &tar.Header{Name: m.name, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		}
		h.Size = int64(len(m.data))
		return h, io.NopCloser(bytes.NewReader(m.data)), nil
	}
	fi, err := os.Lstat(m.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, errVanished
		}
		return nil, nil, fmt.Errorf("stat %s: %w", m.path, err)
	}
	h, err := o.header(m.name, m.path, fi)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, errVanished
		}
		return nil, nil, fmt.Errorf("read %s: %w", m.path, err)
	}
	if h == nil || h.Typeflag != tar.TypeReg {
		return h, nil, nil
	}
	f, err := os.Open(m.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, errVanished
		}
		return nil, nil, fmt.Errorf("open %s: %w", m.path, err)
	}
	return h, f, nil
}

// copyPadded copies exactly size bytes of src into dst. A file that
// shrank while being read is padded with NULs up to size and one that grew
// is cut at size, as barman's TarFileIgnoringTruncate does.
func copyPadded(dst io.Writer, src io.Reader, size int64, buf []byte) (int64, error) {
	// The wrapper hides tar.Writer.ReadFrom so that buf is used.
	n, err := io.CopyBuffer(struct{ io.Writer }{dst}, io.LimitReader(src, size), buf)
	if err != nil {
		return n, err
	}
	if n < size {
		clear(buf)
		for n < size {
			k := min(int64(len(buf)), size-n)
			w, err := dst.Write(buf[:k])
			n += int64(w)
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// readError marks a failure to read a source file, as opposed to a
// failure to write the archive.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// sourceReader wraps the read errors of a source file in readError.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &readError{err: err}
	}
	return n, err
}
