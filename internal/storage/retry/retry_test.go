package retry

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/mem"
	"github.com/bcloud-dev/bcloud/internal/storage/storagetest"
)

var errFlaky = errors.New("connection reset by peer")

// flaky fails the first n calls of every kind with a passing error.
type flaky struct {
	storage.Bucket
	fails map[string]int
	calls map[string]int
}

func newFlaky(n int) *flaky {
	f := &flaky{Bucket: mem.New(), fails: map[string]int{}, calls: map[string]int{}}
	for _, op := range []string{"put", "get", "stat", "list", "delete"} {
		f.fails[op] = n
	}
	return f
}

func (f *flaky) fail(op string) bool {
	f.calls[op]++
	if f.fails[op] > 0 {
		f.fails[op]--
		return true
	}
	return false
}

func (f *flaky) Put(ctx context.Context, key string, r io.Reader, size int64, o storage.PutOptions) error {
	if f.fail("put") {
		_, _ = io.CopyN(io.Discard, r, 3) // a broken upload consumed part of the body
		return errFlaky
	}
	return f.Bucket.Put(ctx, key, r, size, o)
}

func (f *flaky) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if f.fail("get") {
		return nil, errFlaky
	}
	return f.Bucket.Get(ctx, key, off, n)
}

func (f *flaky) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if f.fail("stat") {
		return storage.ObjectInfo{}, errFlaky
	}
	return f.Bucket.Stat(ctx, key)
}

func (f *flaky) List(ctx context.Context, p string, fn func(storage.ObjectInfo) error) error {
	if f.fail("list") {
		return errFlaky
	}
	return f.Bucket.List(ctx, p, fn)
}

func (f *flaky) Delete(ctx context.Context, keys ...string) error {
	if f.fail("delete") {
		return errFlaky
	}
	return f.Bucket.Delete(ctx, keys...)
}

func noSleep(context.Context, time.Duration) error { return nil }

func TestRetriesPassingFailures(t *testing.T) {
	f := newFlaky(2)
	b := New(f, Options{Sleep: noSleep})
	ctx := t.Context()
	if err := b.Put(ctx, "k", strings.NewReader("hello"), 5, storage.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got, err := storage.ReadAll(ctx, b, "k"); err != nil || string(got) != "hello" {
		t.Fatalf("Get = %q, %v (the retried Put must rewind its body)", got, err)
	}
	if _, err := b.Stat(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := b.List(ctx, "", func(storage.ObjectInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	for op, n := range f.calls {
		if n != 3 {
			t.Errorf("%s called %d times, want 3", op, n)
		}
	}
}

func TestGivesUp(t *testing.T) {
	f := newFlaky(100)
	b := New(f, Options{Attempts: 4, Sleep: noSleep})
	err := b.Delete(t.Context(), "k")
	if !errors.Is(err, errFlaky) || !strings.Contains(err.Error(), "after 4 tries") || f.calls["delete"] != 4 {
		t.Fatalf("err = %v after %d calls", err, f.calls["delete"])
	}
}

func TestPermanentNotRetried(t *testing.T) {
	f := newFlaky(0)
	b := New(f, Options{Sleep: noSleep})
	if _, err := b.Stat(t.Context(), "missing"); !errors.Is(err, storage.ErrNotExist) || f.calls["stat"] != 1 {
		t.Fatalf("missing: %v after %d calls", err, f.calls["stat"])
	}
	_ = b.Put(t.Context(), "x", strings.NewReader("1"), 1, storage.PutOptions{})
	err := b.Put(t.Context(), "x", strings.NewReader("2"), 1, storage.PutOptions{IfNotExist: true})
	if !errors.Is(err, storage.ErrExists) || f.calls["put"] != 2 {
		t.Fatalf("conditional: %v after %d puts", err, f.calls["put"])
	}
}

type onceReader struct{ io.Reader }

func TestStreamNotRetried(t *testing.T) {
	f := newFlaky(1)
	b := New(f, Options{Sleep: noSleep})
	err := b.Put(t.Context(), "s", onceReader{strings.NewReader("abc")}, 3, storage.PutOptions{})
	if !errors.Is(err, errFlaky) || f.calls["put"] != 1 {
		t.Fatalf("stream put: %v after %d calls, want one try", err, f.calls["put"])
	}
}

func TestCallTimeout(t *testing.T) {
	hang := &hanging{Bucket: mem.New()}
	b := New(hang, Options{Attempts: 2, CallTimeout: 50 * time.Millisecond, Sleep: noSleep})
	start := time.Now()
	_, err := b.Stat(t.Context(), "k")
	if err == nil || !strings.Contains(err.Error(), "no answer within") || time.Since(start) > 5*time.Second {
		t.Fatalf("hanging store: %v after %s", err, time.Since(start))
	}
}

type hanging struct{ storage.Bucket }

func (h *hanging) Stat(ctx context.Context, _ string) (storage.ObjectInfo, error) {
	<-ctx.Done()
	return storage.ObjectInfo{}, ctx.Err()
}

func TestListNotRepeatedAfterDelivery(t *testing.T) {
	m := mem.New()
	for _, k := range []string{"a", "b"} {
		_ = m.Put(t.Context(), k, strings.NewReader("x"), 1, storage.PutOptions{})
	}
	b := New(&midListFailure{Bucket: m}, Options{Sleep: noSleep})
	seen := 0
	err := b.List(t.Context(), "", func(storage.ObjectInfo) error { seen++; return nil })
	if err == nil || seen != 1 {
		t.Fatalf("List = %v with %d objects delivered, want an error after 1 (no replay)", err, seen)
	}
}

type midListFailure struct{ storage.Bucket }

func (m *midListFailure) List(ctx context.Context, p string, fn func(storage.ObjectInfo) error) error {
	n := 0
	err := m.Bucket.List(ctx, p, func(o storage.ObjectInfo) error {
		if n++; n == 2 {
			return errFlaky
		}
		return fn(o)
	})
	return err
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		New:       func(*testing.T) storage.Bucket { return New(mem.New(), Options{}) },
		LargeSize: 8 << 20,
	})
}
