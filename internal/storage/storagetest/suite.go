// Package storagetest is the conformance suite every storage driver passes.
//
// A driver's test calls Run with a Harness whose New returns a fresh,
// empty bucket (a unique prefix of a shared bucket is fine). The suite runs
// every case raw and again through storage.WithPrefix.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Harness tells the suite how to get buckets of one driver.
type Harness struct {
	// New returns an empty bucket. The suite closes it.
	New func(t *testing.T) storage.Bucket
	// Skip names cases the driver's backend cannot pass, with the reason.
	// In CI (CI=true) a listed case fails instead of skipping.
	Skip map[string]string
	// LargeSize overrides the size of the large-object case (default 64 MiB).
	LargeSize int64
}

type testCase struct {
	name string
	fn   func(t *testing.T, b storage.Bucket, h Harness)
}

var cases = []testCase{
	{"GetMissing", testGetMissing},
	{"StatMissing", testStatMissing},
	{"PutGetRoundTrip", testRoundTrip},
	{"PutOverwrite", testOverwrite},
	{"PutUnknownSize", testUnknownSize},
	{"EmptyObject", testEmptyObject},
	{"RangeRead", testRangeRead},
	{"DeleteIdempotent", testDeleteIdempotent},
	{"DeleteMany", testDeleteMany},
	{"ListOrderAndPrefix", testListOrder},
	{"ListCallbackError", testListCallbackError},
	{"ListCancel", testListCancel},
	{"ConditionalPut", testConditionalPut},
	{"CancelledPutLeavesNothing", testCancelledPut},
	{"FailingReaderLeavesNothing", testFailingReader},
	{"UnusualKeys", testUnusualKeys},
	{"Concurrent", testConcurrent},
	{"CancelledContextAfterOpen", testCancelledAfterOpen},
	{"LargeObject", testLarge},
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	t.Helper()
	for _, mode := range []string{"raw", "prefixed"} {
		t.Run(mode, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					if reason, ok := h.Skip[c.name]; ok {
						SkipOrFail(t, reason)
					}
					b := h.New(t)
					t.Cleanup(func() { _ = b.Close() })
					if mode == "prefixed" {
						b = storage.WithPrefix(b, "nested/prefix")
					}
					c.fn(t, b, h)
				})
			}
		})
	}
}

// SkipOrFail skips t, or fails it when CI=true: in CI a missing real part
// or an unsupported case must not pass silently.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("not allowed to skip in CI: %s", reason)
	}
	t.Skip(reason)
}

func put(t *testing.T, b storage.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), storage.PutOptions{}); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, b storage.Bucket, key string, off, n int64) []byte {
	t.Helper()
	rc, err := b.Get(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, off, n, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data
}

func keys(t *testing.T, b storage.Bucket, prefix string) []string {
	t.Helper()
	var out []string
	if err := b.List(t.Context(), prefix, func(o storage.ObjectInfo) error {
		out = append(out, o.Key)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func testGetMissing(t *testing.T, b storage.Bucket, _ Harness) {
	_, err := b.Get(t.Context(), "missing/key", 0, -1)
	if !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Get(missing) = %v, want ErrNotExist", err)
	}
}

func testStatMissing(t *testing.T, b storage.Bucket, _ Harness) {
	_, err := b.Stat(t.Context(), "missing/key")
	if !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Stat(missing) = %v, want ErrNotExist", err)
	}
}

func testRoundTrip(t *testing.T, b storage.Bucket, _ Harness) {
	data := randomBytes(100_000)
	put(t, b, "dir/obj", data)
	if got := get(t, b, "dir/obj", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("round trip: got %d bytes, want %d identical", len(got), len(data))
	}
	info, err := b.Stat(t.Context(), "dir/obj")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.Key != "dir/obj" {
		t.Fatalf("Stat = %+v, want key dir/obj size %d", info, len(data))
	}
	// The directory-like prefix is not an object.
	if _, err := b.Stat(t.Context(), "dir"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Stat(dir) = %v, want ErrNotExist", err)
	}
}

func testOverwrite(t *testing.T, b storage.Bucket, _ Harness) {
	put(t, b, "k", []byte("first"))
	put(t, b, "k", []byte("second"))
	if got := string(get(t, b, "k", 0, -1)); got != "second" {
		t.Fatalf("after overwrite got %q", got)
	}
}

func testUnknownSize(t *testing.T, b storage.Bucket, _ Harness) {
	data := randomBytes(300_000)
	r := io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:]))
	if err := b.Put(t.Context(), "unknown", r, -1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, b, "unknown", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("unknown-size put: got %d bytes, want %d", len(got), len(data))
	}
}

func testEmptyObject(t *testing.T, b storage.Bucket, _ Harness) {
	put(t, b, "empty", nil)
	if got := get(t, b, "empty", 0, -1); len(got) != 0 {
		t.Fatalf("empty object read %d bytes", len(got))
	}
	info, err := b.Stat(t.Context(), "empty")
	if err != nil || info.Size != 0 {
		t.Fatalf("Stat(empty) = %+v, %v", info, err)
	}
}

func testRangeRead(t *testing.T, b storage.Bucket, _ Harness) {
	data := []byte("0123456789abcdefghij")
	put(t, b, "r", data)
	for _, c := range []struct {
		off, n int64
		want   string
	}{
		{0, -1, string(data)},
		{5, -1, string(data[5:])},
		{5, 3, "567"},
		{0, 1, "0"},
		{15, 100, string(data[15:])},
	} {
		if got := string(get(t, b, "r", c.off, c.n)); got != c.want {
			t.Errorf("Get(off=%d, n=%d) = %q, want %q", c.off, c.n, got, c.want)
		}
	}
}

func testDeleteIdempotent(t *testing.T, b storage.Bucket, _ Harness) {
	put(t, b, "d", []byte("x"))
	for i := range 2 {
		if err := b.Delete(t.Context(), "d"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if _, err := b.Stat(t.Context(), "d"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("after Delete, Stat = %v", err)
	}
	if err := b.Delete(t.Context(), "never/existed"); err != nil {
		t.Fatalf("Delete(missing) = %v, want nil", err)
	}
}

func testDeleteMany(t *testing.T, b storage.Bucket, _ Harness) {
	var ks []string
	for i := range 25 {
		k := fmt.Sprintf("many/%03d", i)
		put(t, b, k, []byte{byte(i)})
		ks = append(ks, k)
	}
	put(t, b, "many-keep", []byte("k"))
	if err := b.Delete(t.Context(), append(ks, "many/missing")...); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, b, "many"); len(got) != 1 || got[0] != "many-keep" {
		t.Fatalf("after bulk delete, List = %v, want [many-keep]", got)
	}
}

func testListOrder(t *testing.T, b storage.Bucket, _ Harness) {
	// Chosen so that lexical order differs from a per-directory walk order.
	names := []string{"l/b", "l/a/z", "l/a-c", "l/a/b/c", "l/A", "l/a0", "lx/other", "l/c.gz"}
	for _, n := range names {
		put(t, b, n, []byte(n))
	}
	got := keys(t, b, "l/")
	want := []string{"l/A", "l/a-c", "l/a/b/c", "l/a/z", "l/a0", "l/b", "l/c.gz"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("List(l/) = %v, want %v", got, want)
	}
	got = keys(t, b, "l/a")
	want = []string{"l/a-c", "l/a/b/c", "l/a/z", "l/a0"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("List(l/a) = %v, want %v", got, want)
	}
	if got := keys(t, b, "nothing/"); len(got) != 0 {
		t.Fatalf("List(nothing/) = %v, want none", got)
	}
	var sizes []int64
	_ = b.List(t.Context(), "l/b", func(o storage.ObjectInfo) error { sizes = append(sizes, o.Size); return nil })
	if len(sizes) != 1 || sizes[0] != 3 {
		t.Fatalf("List sizes = %v, want [3]", sizes)
	}
}

func testListCallbackError(t *testing.T, b storage.Bucket, _ Harness) {
	for i := range 5 {
		put(t, b, fmt.Sprintf("cb/%d", i), []byte("x"))
	}
	stop := errors.New("stop here")
	n := 0
	err := b.List(t.Context(), "cb/", func(storage.ObjectInfo) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("List with failing callback: err=%v after %d calls, want stop after 2", err, n)
	}
}

func testListCancel(t *testing.T, b storage.Bucket, _ Harness) {
	for i := range 3 {
		put(t, b, fmt.Sprintf("lc/%d", i), []byte("x"))
	}
	ctx, cancel := context.WithCancel(t.Context())
	n := 0
	err := b.List(ctx, "lc/", func(storage.ObjectInfo) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("List after cancel = %v (after %d calls), want context.Canceled", err, n)
	}
}

func testConditionalPut(t *testing.T, b storage.Bucket, _ Harness) {
	ctx := t.Context()
	opts := storage.PutOptions{IfNotExist: true}
	if err := b.Put(ctx, "cond", strings.NewReader("one"), 3, opts); err != nil {
		t.Fatalf("first conditional put: %v", err)
	}
	err := b.Put(ctx, "cond", strings.NewReader("two"), 3, opts)
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second conditional put = %v, want ErrExists", err)
	}
	if got := string(get(t, b, "cond", 0, -1)); got != "one" {
		t.Fatalf("conditional put overwrote: %q", got)
	}
	// Racing conditional puts: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf("writer-%d", i)
			err := b.Put(ctx, "race", strings.NewReader(body), int64(len(body)), opts)
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, storage.ErrExists) {
				t.Errorf("racing put: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d racing conditional puts succeeded, want exactly 1", wins)
	}
}

// slowReader yields some bytes, then blocks until ctx is done.
type slowReader struct {
	ctx  context.Context
	sent int
	hold chan struct{}
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.sent < 64*1024 {
		n := min(len(p), 64*1024-r.sent)
		for i := range n {
			p[i] = 'x'
		}
		r.sent += n
		return n, nil
	}
	close(r.hold)
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func testCancelledPut(t *testing.T, b storage.Bucket, _ Harness) {
	ctx, cancel := context.WithCancel(t.Context())
	r := &slowReader{ctx: ctx, hold: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- b.Put(ctx, "cancelled", r, 1<<20, storage.PutOptions{}) }()
	<-r.hold
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Put with cancelled ctx returned nil")
	}
	if _, err := b.Stat(t.Context(), "cancelled"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("after cancelled Put, Stat = %v, want ErrNotExist", err)
	}
	if got := keys(t, b, ""); len(got) != 0 {
		t.Fatalf("cancelled Put left objects visible: %v", got)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("source broke")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func testFailingReader(t *testing.T, b storage.Bucket, _ Harness) {
	put(t, b, "keep", []byte("old"))
	err := b.Put(t.Context(), "keep", &failingReader{n: 10_000}, 20_000, storage.PutOptions{})
	if err == nil {
		t.Fatal("Put from a failing reader returned nil")
	}
	if got := string(get(t, b, "keep", 0, -1)); got != "old" {
		t.Fatalf("failed Put replaced the object: %q", got)
	}
}

func testUnusualKeys(t *testing.T, b storage.Bucket, _ Harness) {
	ks := []string{
		"sp ace/file name",
		"plus+and=equals,comma",
		"unicodé/日本語",
		"percent%20literal",
		"quote'and\"dq",
		"wals/0000000100000000/000000010000000000000001.00000028.backup.gz",
		"semi;colon&amp?q#hash",
	}
	for _, k := range ks {
		put(t, b, k, []byte(k))
	}
	for _, k := range ks {
		if got := string(get(t, b, k, 0, -1)); got != k {
			t.Errorf("Get(%q) = %q", k, got)
		}
	}
	got := keys(t, b, "")
	if len(got) != len(ks) {
		t.Fatalf("List = %q, want %d keys", got, len(ks))
	}
	seen := map[string]bool{}
	for _, k := range got {
		seen[k] = true
	}
	for _, k := range ks {
		if !seen[k] {
			t.Errorf("List lost key %q (got %q)", k, got)
		}
	}
}

func testConcurrent(t *testing.T, b storage.Bucket, _ Harness) {
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("conc/%02d", i)
			data := randomBytes(50_000 + i)
			if err := b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), storage.PutOptions{}); err != nil {
				t.Errorf("Put %s: %v", key, err)
				return
			}
			rc, err := b.Get(t.Context(), key, 0, -1)
			if err != nil {
				t.Errorf("Get %s: %v", key, err)
				return
			}
			got, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("concurrent round trip of %s differs (err %v)", key, err)
			}
		}()
	}
	wg.Wait()
	if got := keys(t, b, "conc/"); len(got) != 16 {
		t.Fatalf("List after concurrent puts: %d keys, want 16", len(got))
	}
}

func testCancelledAfterOpen(t *testing.T, b storage.Bucket, _ Harness) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Put(ctx, "after-cancel", strings.NewReader("x"), 1, storage.PutOptions{}); err == nil {
		t.Fatal("Put with a cancelled ctx succeeded")
	}
	// A cancelled call must not poison the bucket for later calls.
	put(t, b, "after-cancel", []byte("ok"))
	if got := string(get(t, b, "after-cancel", 0, -1)); got != "ok" {
		t.Fatalf("got %q", got)
	}
}

func testLarge(t *testing.T, b storage.Bucket, h Harness) {
	size := h.LargeSize
	if size == 0 {
		size = 64 << 20
	}
	src := &patternReader{remaining: size}
	wantSum := sha256.New()
	if err := b.Put(t.Context(), "large/object", io.TeeReader(src, wantSum), size, storage.PutOptions{}); err != nil {
		t.Fatalf("large Put: %v", err)
	}
	rc, err := b.Get(t.Context(), "large/object", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	gotSum := sha256.New()
	n, err := io.Copy(gotSum, rc)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(gotSum.Sum(nil), wantSum.Sum(nil)) {
		t.Fatalf("large object: read %d bytes, want %d byte-identical", n, size)
	}
	// A range in the middle of a later part.
	off := size - size/3
	mid := get(t, b, "large/object", off, 4096)
	want := patternBytes(off, 4096)
	if !bytes.Equal(mid, want) {
		t.Fatal("range read inside the large object differs")
	}
}

// patternReader produces a deterministic, incompressible-looking stream
// without holding it in memory.
type patternReader struct {
	off       int64
	remaining int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.remaining <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.remaining))
	copy(p, patternBytes(r.off, n))
	r.off += int64(n)
	r.remaining -= int64(n)
	return n, nil
}

func patternBytes(off int64, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		x := uint64(off + int64(i))
		x ^= x >> 7
		x *= 0x9E3779B97F4A7C15
		out[i] = byte(x >> 56)
	}
	return out
}
