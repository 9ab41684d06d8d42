// Package retry wraps a storage.Bucket so that idempotent calls that fail
// for a passing reason are tried again, with jittered exponential backoff,
// and so that no call waits forever on a store that stopped answering.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Options tune the decorator. Zero values take the defaults.
type Options struct {
	// Attempts is the total number of tries of one call (default 5).
	Attempts int
	// BaseDelay is the backoff before the second try, doubled each time
	// up to MaxDelay (defaults 200 ms and 10 s), with full jitter.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// CallTimeout bounds one try of a small call: Stat, List page
	// iteration excluded, Delete, and Put of a seekable body (default 2 min).
	CallTimeout time.Duration
	// Sleep waits between tries; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o Options) withDefaults() Options {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 200 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 10 * time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 2 * time.Minute
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// New wraps b.
func New(b storage.Bucket, opts Options) storage.Bucket {
	return &bucket{b: b, o: opts.withDefaults()}
}

type bucket struct {
	b storage.Bucket
	o Options
}

// Permanent reports whether err will not go away by trying again.
func Permanent(err error) bool {
	return errors.Is(err, storage.ErrNotExist) || errors.Is(err, storage.ErrExists) ||
		errors.Is(err, storage.ErrNoBucket) || errors.Is(err, context.Canceled) ||
		errors.Is(err, storage.ErrPermanent)
}

// do runs fn until it succeeds, fails permanently, or runs out of tries.
func (r *bucket) do(ctx context.Context, op, key string, fn func(ctx context.Context) error) error {
	var err error
	delay := r.o.BaseDelay
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, r.o.CallTimeout)
		err = fn(callCtx)
		timedOut := callCtx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			return nil
		}
		if timedOut {
			err = fmt.Errorf("%s %s: no answer within %s: %w", op, key, r.o.CallTimeout, err)
		}
		if ctx.Err() != nil || Permanent(err) || attempt >= r.o.Attempts {
			if attempt > 1 {
				return fmt.Errorf("%w (after %d tries)", err, attempt)
			}
			return err
		}
		wait := time.Duration(rand.Int64N(int64(delay) + 1))
		slog.WarnContext(ctx, "storage call failed, retrying", "op", op, "key", key, "attempt", attempt, "wait", wait.Round(time.Millisecond), "error", err)
		if serr := r.o.Sleep(ctx, wait); serr != nil {
			return err
		}
		delay = min(2*delay, r.o.MaxDelay)
	}
}

func (r *bucket) Put(ctx context.Context, key string, body io.Reader, size int64, opts storage.PutOptions) error {
	seeker, ok := body.(io.Seeker)
	if !ok {
		// A stream cannot be replayed: one try, no call timeout (large
		// uploads take long; the driver retries parts itself).
		return r.b.Put(ctx, key, body, size, opts)
	}
	start, err := seeker.Seek(0, io.SeekCurrent)
	if err != nil {
		return r.b.Put(ctx, key, body, size, opts)
	}
	first := true
	return r.do(ctx, "put", key, func(ctx context.Context) error {
		if !first {
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return fmt.Errorf("rewind body of %s: %w", key, storage.ErrPermanent)
			}
		}
		first = false
		// After a lost answer a conditional retry may find the object it
		// stored itself: ErrExists is returned, and the caller (the WAL
		// archiver) compares content to decide.
		return r.b.Put(ctx, key, body, size, opts)
	})
}

func (r *bucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.do(ctx, "get", key, func(callCtx context.Context) error {
		// The body outlives this call: open under ctx, not callCtx.
		var err error
		rc, err = r.b.Get(ctx, key, offset, length)
		return err
	})
	return rc, err
}

func (r *bucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	var info storage.ObjectInfo
	err := r.do(ctx, "stat", key, func(ctx context.Context) error {
		var err error
		info, err = r.b.Stat(ctx, key)
		return err
	})
	return info, err
}

// List retries only while nothing was delivered to fn, so that fn never
// sees an object twice.
func (r *bucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	delivered := false
	var fnErr error
	err := r.do(ctx, "list", prefix, func(context.Context) error {
		err := r.b.List(ctx, prefix, func(o storage.ObjectInfo) error {
			delivered = true
			if err := fn(o); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
		if err != nil && (delivered || fnErr != nil) {
			return errors.Join(err, storage.ErrPermanent)
		}
		return err
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return fnErr
	}
	return err
}

func (r *bucket) Delete(ctx context.Context, keys ...string) error {
	return r.do(ctx, "delete", fmt.Sprintf("%d object(s)", len(keys)), func(ctx context.Context) error {
		return r.b.Delete(ctx, keys...)
	})
}

func (r *bucket) Properties() storage.Properties { return r.b.Properties() }

func (r *bucket) Close() error { return r.b.Close() }

// AbortUploads forwards to the wrapped bucket (storage.UploadAborter).
func (r *bucket) AbortUploads(ctx context.Context, prefix string, startedBefore time.Time) (int, error) {
	var n int
	err := r.do(ctx, "abort uploads", prefix, func(ctx context.Context) error {
		var err error
		n, err = storage.AbortUploads(ctx, r.b, prefix, startedBefore)
		return err
	})
	return n, err
}
