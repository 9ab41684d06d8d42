package backup

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// pipeBuffer is the write buffer in front of each upload pipe, so that the
// compressor's small writes do not each wait for the uploader.
const pipeBuffer = 256 << 10

// copyBuffer is the read buffer of one worker.
const copyBuffer = 1 << 20

// sink is what archives are written to: the bucket and the naming and
// encoding of a backup's archives, shared by all archives of one backup.
type sink struct {
	bucket   storage.Bucket
	server   string
	backupID string
	algo     compress.Algorithm
	level    compress.Level
	tags     map[string]string
	maxSize  int64 // an archive part is closed once it has emitted more
	jobs     int
	owners   owners
	progress *counter // uncompressed bytes archived
	// ctx is the uploads' context, cancelled by fail on the first error.
	ctx  context.Context
	fail context.CancelCauseFunc
}

// archive writes one named archive ("data" or a tablespace oid) as up to
// jobs parts written at once, numbered name.tar, name_0001.tar, ... in the
// order they are opened. Each part is a complete tar stream compressed on
// its own and streamed into a Put.
type archive struct {
	s    *sink
	name string

	mu    sync.Mutex
	next  int
	slots []*part
	done  []partStat
}

// partStat records one stored part for copy_stats.
type partStat struct {
	key        string
	start, end time.Time
	size       int64 // compressed bytes stored
}

// part is one archive object being written.
type part struct {
	key     string
	tw      *tar.Writer
	cw      io.WriteCloser
	bw      *bufio.Writer
	pw      *io.PipeWriter
	out     *countWriter
	start   time.Time
	result  chan error // Put's outcome, buffered
	pending *part      // the slot's previous part, still uploading
	closed  bool
}

type countWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func newArchive(s *sink, name string) *archive {
	return &archive{s: s, name: name, slots: make([]*part, max(s.jobs, 1))}
}

// open starts the next part: the Put runs in its own goroutine reading
// the pipe that the tar and compression layers write into.
func (a *archive) open() (*part, error) {
	a.mu.Lock()
	n := a.next
	a.next++
	a.mu.Unlock()
	key := layout.ArchiveKey(a.s.server, a.s.backupID, a.name, n, a.s.algo.TarSuffix())
	pr, pw := io.Pipe()
	p := &part{key: key, pw: pw, start: time.Now(), result: make(chan error, 1)}
	p.out = &countWriter{w: pw}
	p.bw = bufio.NewWriterSize(p.out, pipeBuffer)
	cw, err := compress.NewTarWriterLevel(p.bw, a.s.algo, a.s.level)
	if err != nil {
		_ = pw.Close()
		return nil, fmt.Errorf("create archive %s: %w", key, err)
	}
	p.cw = cw
	p.tw = tar.NewWriter(cw)
	go func() {
		err := a.s.bucket.Put(a.s.ctx, key, pr, -1, storage.PutOptions{Tags: a.s.tags})
		if err != nil {
			err = fmt.Errorf("upload %s: %w", key, err)
			a.s.fail(err)
		}
		_ = pr.CloseWithError(uploadClosed(err))
		p.result <- err
	}()
	return p, nil
}

// uploadClosed is the error writers see once the upload has ended.
func uploadClosed(err error) error {
	if err != nil {
		return err
	}
	return errors.New("upload already finished")
}

// finish ends the part's streams and waits for its upload.
func (p *part) finish() (partStat, error) {
	var err error
	if !p.closed {
		p.closed = true
		err = errors.Join(p.tw.Close(), p.cw.Close(), p.bw.Flush())
		if err != nil {
			_ = p.pw.CloseWithError(err)
		} else {
			_ = p.pw.Close()
		}
	}
	perr := <-p.result
	p.result <- perr // finish may be called again on the error path
	st := partStat{key: p.key, start: p.start, end: time.Now(), size: p.out.n.Load()}
	if perr != nil {
		return st, perr
	}
	if err != nil {
		return st, fmt.Errorf("write archive %s: %w", p.key, err)
	}
	return st, nil
}

// abort ends the part's upload with err, leaving no object behind.
func (p *part) abort(err error) {
	if p == nil {
		return
	}
	p.closed = true
	_ = p.pw.CloseWithError(err)
	<-p.result //nolint:errcheck // the uploader's own outcome is replaced by err
	p.result <- err
	p.pending.abort(err)
}

// slotPart returns the open part of a slot, rotating to a new part when
// the current one has emitted more than the archive size limit. A slot
// keeps at most one previous part uploading, so memory stays bounded.
func (a *archive) slotPart(slot int) (*part, error) {
	p := a.slots[slot]
	if p != nil && p.out.n.Load() <= a.s.maxSize {
		return p, nil
	}
	var pending *part
	if p != nil {
		if err := a.settle(p.pending); err != nil {
			return nil, err
		}
		p.pending = nil
		if err := p.closeStreams(); err != nil {
			return nil, err
		}
		pending = p
	}
	np, err := a.open()
	if err != nil {
		return nil, err
	}
	np.pending = pending
	a.slots[slot] = np
	return np, nil
}

// closeStreams finishes the tar and compression streams of a part without
// waiting for the upload.
func (p *part) closeStreams() error {
	p.closed = true
	err := errors.Join(p.tw.Close(), p.cw.Close(), p.bw.Flush())
	if err != nil {
		_ = p.pw.CloseWithError(err)
		return fmt.Errorf("write archive %s: %w", p.key, err)
	}
	return p.pw.Close()
}

// settle waits for a finished part and records it.
func (a *archive) settle(p *part) error {
	if p == nil {
		return nil
	}
	st, err := p.finish()
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.done = append(a.done, st)
	a.mu.Unlock()
	return nil
}

// add writes one member into the slot's part. Vanished entries are
// skipped silently.
func (a *archive) add(ctx context.Context, slot int, m *member, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	h, rc, err := a.s.owners.open(m)
	if errors.Is(err, errVanished) || (err == nil && h == nil) {
		return nil
	}
	if err != nil {
		return err
	}
	if rc != nil {
		defer rc.Close()
	}
	p, err := a.slotPart(slot)
	if err != nil {
		return err
	}
	if err := p.tw.WriteHeader(h); err != nil {
		return a.writeError(ctx, p, err)
	}
	if rc == nil {
		return nil
	}
	n, err := copyPadded(p.tw, sourceReader{rc}, h.Size, buf)
	a.s.progress.Add(n)
	if err != nil {
		var pe *readError
		if errors.As(err, &pe) {
			return fmt.Errorf("read %s: %w", m.path, pe.err)
		}
		return a.writeError(ctx, p, err)
	}
	return nil
}

// writeError prefers the upload's own failure over the pipe error it
// caused.
func (a *archive) writeError(ctx context.Context, p *part, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return fmt.Errorf("write archive %s: %w", p.key, err)
}

// close finishes every open part and waits for all uploads. An archive
// that received no member is still stored, as an empty tar, so that
// restore finds the archive of every tablespace.
func (a *archive) close() error {
	a.mu.Lock()
	empty := a.next == 0
	a.mu.Unlock()
	if empty {
		p, err := a.open()
		if err != nil {
			return err
		}
		a.slots[0] = p
	}
	var errs []error
	for i, p := range a.slots {
		if p == nil {
			continue
		}
		errs = append(errs, a.settle(p.pending))
		p.pending = nil
		errs = append(errs, a.settle(p))
		a.slots[i] = nil
	}
	return errors.Join(errs...)
}

// abort stops every upload of the archive.
func (a *archive) abort(err error) {
	for i, p := range a.slots {
		p.abort(err)
		a.slots[i] = nil
	}
}

// stats returns the archive's stored parts.
func (a *archive) stats() []partStat {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]partStat(nil), a.done...)
}
