package restore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// readAheadChunk and readAheadDepth bound the memory of one download's
// read-ahead (4 MiB) while letting the network run ahead of the disk.
const (
	readAheadChunk = 1 << 20
	readAheadDepth = 4
	// resumeAttempts is how many times a download cut mid-stream is
	// resumed from where it stopped.
	resumeAttempts = 3
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, readAheadChunk); return &b }}

type chunk struct {
	buf *[]byte
	n   int
	err error
}

// aheadReader downloads an object in a goroutine, up to readAheadDepth
// chunks ahead of its consumer, resuming with a ranged read when the
// stream breaks.
type aheadReader struct {
	ch   chan chunk
	cur  chunk
	off  int
	err  error
	stop chan struct{}
	once sync.Once

	mu sync.Mutex
	rc io.ReadCloser
}

// readAhead returns a reader of the object key, already opened as rc.
// stopDownload ends the download.
func readAhead(ctx context.Context, b storage.Bucket, key string, rc io.ReadCloser) *aheadReader {
	a := &aheadReader{ch: make(chan chunk, readAheadDepth), stop: make(chan struct{}), rc: rc}
	go a.fill(ctx, b, key)
	return a
}

func (a *aheadReader) fill(ctx context.Context, b storage.Bucket, key string) {
	defer close(a.ch)
	defer a.closeBody()
	var offset int64
	attempts := 0
	for {
		bp := chunkPool.Get().(*[]byte)
		a.mu.Lock()
		rc := a.rc
		a.mu.Unlock()
		n, err := io.ReadFull(rc, *bp)
		offset += int64(n)
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			err = io.EOF
		case err != nil && attempts < resumeAttempts && ctx.Err() == nil && !a.stopped():
			attempts++
			slog.WarnContext(ctx, "download interrupted: resuming", "key", key, "offset", offset, "error", err)
			if rerr := a.reopen(ctx, b, key, offset, attempts); rerr == nil {
				err = nil
			}
		}
		if n == 0 && err == nil {
			chunkPool.Put(bp)
			continue
		}
		select {
		case a.ch <- chunk{buf: bp, n: n, err: err}:
		case <-ctx.Done():
			chunkPool.Put(bp)
			return
		case <-a.stop:
			chunkPool.Put(bp)
			return
		}
		if err != nil {
			return
		}
	}
}

// reopen replaces the body with a ranged read from offset.
func (a *aheadReader) reopen(ctx context.Context, b storage.Bucket, key string, offset int64, attempt int) error {
	select {
	case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	case <-a.stop:
		return errors.New("stopped")
	}
	rc, err := b.Get(ctx, key, offset, -1)
	if err != nil {
		return err
	}
	a.mu.Lock()
	old := a.rc
	a.rc = rc
	a.mu.Unlock()
	_ = old.Close()
	return nil
}

func (a *aheadReader) stopped() bool {
	select {
	case <-a.stop:
		return true
	default:
		return false
	}
}

func (a *aheadReader) closeBody() {
	a.mu.Lock()
	defer a.mu.Unlock()
	_ = a.rc.Close()
}

func (a *aheadReader) Read(p []byte) (int, error) {
	for a.cur.buf == nil || a.off == a.cur.n {
		if a.cur.buf != nil {
			err := a.cur.err
			chunkPool.Put(a.cur.buf)
			a.cur = chunk{}
			if err != nil {
				a.err = err
			}
		}
		if a.err != nil {
			return 0, a.err
		}
		c, ok := <-a.ch
		if !ok {
			a.err = io.ErrUnexpectedEOF
			return 0, a.err
		}
		a.cur, a.off = c, 0
	}
	n := copy(p, (*a.cur.buf)[a.off:a.cur.n])
	a.off += n
	return n, nil
}

// stopDownload stops the download and releases the body.
func (a *aheadReader) stopDownload() {
	a.once.Do(func() { close(a.stop) })
	a.closeBody()
}
