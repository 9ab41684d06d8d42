package gcs_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/gcs"
	"github.com/bcloud-dev/bcloud/internal/storage/storagetest"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func open(t *testing.T, cfg gcs.Config) storage.Bucket {
	t.Helper()
	b, err := gcs.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	srv := testenv.FakeGCS(t)
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Bucket {
			b, err := gcs.Open(t.Context(), gcs.Config{Bucket: srv.NewBucket(t), EmulatorHost: srv.Host})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	})
}

// TestConformanceSmallChunks runs the suite with the smallest upload chunk,
// so that every object above 256 KiB goes through a multi-request
// resumable upload.
func TestConformanceSmallChunks(t *testing.T) {
	srv := testenv.FakeGCS(t)
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Bucket {
			cfg := gcs.Config{Bucket: srv.NewBucket(t), EmulatorHost: "http://" + srv.Host, ChunkSize: 256 << 10}
			b, err := gcs.Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		LargeSize: 3<<20 + 12345,
	})
}

// brokenReader yields n bytes, then fails or (with eof) ends early.
type brokenReader struct {
	n   int
	eof bool
}

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		if r.eof {
			return 0, io.EOF
		}
		return 0, errors.New("source broke")
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'y'
	}
	r.n -= k
	return k, nil
}

// TestAbandonedResumableUpload checks that an upload whose earlier chunks
// were already sent is never finalised when the source fails or falls
// short of the declared size.
func TestAbandonedResumableUpload(t *testing.T) {
	srv := testenv.FakeGCS(t)
	b := open(t, gcs.Config{Bucket: srv.NewBucket(t), EmulatorHost: srv.Host, ChunkSize: 256 << 10})
	ctx := t.Context()
	if err := b.Put(ctx, "keep", strings.NewReader("old"), 3, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		eof  bool
		size int64
	}{
		{"failing", false, 2 << 20},
		{"failing-unknown-size", false, -1},
		{"short", true, 2 << 20},
	} {
		for _, key := range []string{"keep", "new-" + c.name} {
			r := &brokenReader{n: 700 << 10, eof: c.eof}
			if err := b.Put(ctx, key, r, c.size, storage.PutOptions{}); err == nil {
				t.Fatalf("%s: Put(%s) succeeded", c.name, key)
			} else {
				t.Log(err)
			}
		}
	}
	if got, err := storage.ReadAll(ctx, b, "keep"); err != nil || string(got) != "old" {
		t.Fatalf("keep = %q, %v; want the old content", got, err)
	}
	var keys []string
	_ = b.List(ctx, "", func(o storage.ObjectInfo) error { keys = append(keys, o.Key); return nil })
	if len(keys) != 1 {
		t.Fatalf("objects after failed uploads: %v, want [keep]", keys)
	}
}

// recorded is one request seen by the proxy.
type recorded struct {
	method string
	url    *url.URL
	header http.Header
	body   []byte
}

// proxy forwards requests to the fake server, records them, and lets a
// test alter request bodies.
type proxy struct {
	mu     sync.Mutex
	reqs   []recorded
	mutate func(body []byte) []byte
	// fail, when set, answers a request with 503 instead of forwarding it.
	fail     func(r *http.Request) bool
	upstream string
	self     *httptest.Server
}

func newProxy(t *testing.T, srv testenv.GCSServer) *proxy {
	p := &proxy{upstream: srv.URL()}
	p.self = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.self.Close)
	return p
}

func (p *proxy) host() string { return strings.TrimPrefix(p.self.URL, "http://") }

func (p *proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.reqs = append(p.reqs, recorded{r.Method, r.URL, r.Header.Clone(), body})
	mutate := p.mutate
	failed := p.fail != nil && p.fail(r)
	p.mu.Unlock()
	if failed {
		http.Error(w, `{"error":{"code":503,"message":"try again"}}`, http.StatusServiceUnavailable)
		return
	}
	if mutate != nil {
		body = mutate(body)
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			// Resumable uploads continue at Location: keep them on the proxy.
			w.Header().Add(k, strings.Replace(v, p.upstream, p.self.URL, 1))
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *proxy) uploads() []recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []recorded
	for _, r := range p.reqs {
		if strings.HasPrefix(r.url.Path, "/upload/") {
			out = append(out, r)
		}
	}
	return out
}

func crc32c(data []byte) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	return base64.StdEncoding.EncodeToString(b[:])
}

// TestUploadRequests checks what a Put sends: the whole-object CRC32C,
// the does-not-exist precondition and the KMS key.
func TestUploadRequests(t *testing.T) {
	srv := testenv.FakeGCS(t)
	p := newProxy(t, srv)
	cfg := gcs.Config{Bucket: srv.NewBucket(t), EmulatorHost: p.host(), ChunkSize: 256 << 10, KMSKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k"}
	b := open(t, cfg)
	ctx := t.Context()

	small := []byte("a small object sent in one request")
	if err := b.Put(ctx, "small", bytes.NewReader(small), int64(len(small)), storage.PutOptions{IfNotExist: true}); err != nil {
		t.Fatal(err)
	}
	ups := p.uploads()
	if len(ups) != 1 {
		t.Fatalf("small Put sent %d upload requests, want 1", len(ups))
	}
	q := ups[0].url.Query()
	if q.Get("ifGenerationMatch") != "0" || q.Get("kmsKeyName") != cfg.KMSKeyName {
		t.Errorf("small Put query = %v, want ifGenerationMatch=0 and kmsKeyName", q)
	}
	if want := `"crc32c":"` + crc32c(small) + `"`; !bytes.Contains(ups[0].body, []byte(want)) {
		t.Errorf("single-request upload metadata lacks %s", want)
	}

	p.mu.Lock()
	p.reqs = nil
	p.mu.Unlock()
	large := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 640,000 bytes: 3 chunks
	if err := b.Put(ctx, "large", bytes.NewReader(large), -1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	ups = p.uploads()
	if len(ups) != 4 {
		t.Fatalf("large Put sent %d upload requests, want 4 (start + 3 chunks)", len(ups))
	}
	if q := ups[0].url.Query(); q.Get("uploadType") != "resumable" || q.Get("kmsKeyName") != cfg.KMSKeyName {
		t.Errorf("resumable start query = %v", q)
	}
	final := ups[len(ups)-1].header.Get("X-Goog-Hash")
	if want := "crc32c=" + crc32c(large); final != want {
		t.Errorf("final chunk X-Goog-Hash = %q, want %q", final, want)
	}
	for _, u := range ups[1 : len(ups)-1] {
		if h := u.header.Get("X-Goog-Hash"); h != "" {
			t.Errorf("intermediate chunk carries X-Goog-Hash %q", h)
		}
	}
}

// TestCorruptedUploadRejected alters the bytes on the wire: the declared
// CRC32C must make the service refuse the object.
func TestCorruptedUploadRejected(t *testing.T) {
	srv := testenv.FakeGCS(t)
	p := newProxy(t, srv)
	b := open(t, gcs.Config{Bucket: srv.NewBucket(t), EmulatorHost: p.host()})
	p.mu.Lock()
	p.mutate = func(body []byte) []byte {
		return bytes.Replace(body, []byte("PAYLOAD"), []byte("PAYL0AD"), 1)
	}
	p.mu.Unlock()
	data := []byte("some PAYLOAD bytes")
	err := b.Put(t.Context(), "corrupt", bytes.NewReader(data), int64(len(data)), storage.PutOptions{})
	if err == nil {
		t.Fatal("Put of corrupted bytes succeeded")
	}
	t.Log(err)
	p.mu.Lock()
	p.mutate = nil
	p.mu.Unlock()
	if _, err := b.Stat(t.Context(), "corrupt"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("after rejected upload Stat = %v, want ErrNotExist", err)
	}
}

func TestTagsBecomeMetadata(t *testing.T) {
	srv := testenv.FakeGCS(t)
	bucket := srv.NewBucket(t)
	b := open(t, gcs.Config{Bucket: bucket, EmulatorHost: srv.Host})
	tags := map[string]string{"env": "prod", "team": "db"}
	opts := storage.PutOptions{Tags: tags, ContentType: "application/gzip"}
	if err := b.Put(t.Context(), "wals/x.gz", strings.NewReader("x"), 1, opts); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL() + "/storage/v1/b/" + bucket + "/o/" + url.PathEscape("wals/x.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var attrs struct {
		ContentType string            `json:"contentType"`
		Metadata    map[string]string `json:"metadata"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&attrs); err != nil {
		t.Fatal(err)
	}
	if attrs.ContentType != "application/gzip" || len(attrs.Metadata) != 2 ||
		attrs.Metadata["env"] != "prod" || attrs.Metadata["team"] != "db" {
		t.Fatalf("object attributes = %+v, want content type application/gzip and metadata %v", attrs, tags)
	}
}

func TestReadAtAndPastEnd(t *testing.T) {
	srv := testenv.FakeGCS(t)
	b := open(t, gcs.Config{Bucket: srv.NewBucket(t), EmulatorHost: srv.Host})
	ctx := t.Context()
	if err := b.Put(ctx, "r", strings.NewReader("0123456789"), 10, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ off, n int64 }{{10, -1}, {10, 5}, {50, -1}, {3, 0}} {
		rc, err := b.Get(ctx, "r", c.off, c.n)
		if err != nil {
			t.Fatalf("Get(off=%d, n=%d): %v", c.off, c.n, err)
		}
		data, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || len(data) != 0 {
			t.Fatalf("Get(off=%d, n=%d) read %q, %v; want nothing", c.off, c.n, data, err)
		}
	}
	if _, err := b.Get(ctx, "missing", 0, 0); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("zero-length Get of a missing key = %v, want ErrNotExist", err)
	}
}

func TestProperties(t *testing.T) {
	srv := testenv.FakeGCS(t)
	b := open(t, gcs.Config{Bucket: "any", EmulatorHost: srv.Host})
	p := b.Properties()
	if p.Name != "gcs" || !p.ConditionalPut || p.DeleteBatch < 1 {
		t.Fatalf("Properties = %+v", p)
	}
}

// TestDeleteCancelled checks a bulk delete stops when its ctx ends.
func TestDeleteCancelled(t *testing.T) {
	srv := testenv.FakeGCS(t)
	b := open(t, gcs.Config{Bucket: srv.NewBucket(t), EmulatorHost: srv.Host})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Delete(ctx, "a", "b", "c"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete with cancelled ctx = %v, want context.Canceled", err)
	}
}

// TestUploadRetries checks that transient errors on every upload request
// are retried, and that a request failing for good ends the Put in
// bounded time without leaving an object.
func TestUploadRetries(t *testing.T) {
	srv := testenv.FakeGCS(t)
	p := newProxy(t, srv)
	b := open(t, gcs.Config{Bucket: srv.NewBucket(t), EmulatorHost: p.host(), ChunkSize: 256 << 10})
	ctx := t.Context()
	seen := map[string]bool{}
	p.mu.Lock()
	p.fail = func(r *http.Request) bool {
		// Fail the first try of each distinct upload request.
		if !strings.HasPrefix(r.URL.Path, "/upload/") {
			return false
		}
		id := r.Method + r.URL.RequestURI() + r.Header.Get("Content-Range")
		if seen[id] {
			return false
		}
		seen[id] = true
		return true
	}
	p.mu.Unlock()
	data := bytes.Repeat([]byte("retry me "), 100_000) // 900,000 bytes: 4 chunks
	for _, size := range []int64{int64(len(data)), -1} {
		if err := b.Put(ctx, "flaky", bytes.NewReader(data), size, storage.PutOptions{}); err != nil {
			t.Fatalf("Put through transient errors: %v", err)
		}
		if got, err := storage.ReadAll(ctx, b, "flaky"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, %v", len(got), err)
		}
		p.mu.Lock()
		clear(seen)
		p.mu.Unlock()
	}
	if err := b.Put(ctx, "small", strings.NewReader("small"), 5, storage.PutOptions{IfNotExist: true}); err != nil {
		t.Fatalf("small Put through a transient error: %v", err)
	}

	p.mu.Lock()
	p.reqs = nil
	// Chunks of a resumable upload go to the session URL.
	p.fail = func(r *http.Request) bool {
		return r.URL.Query().Get("upload_id") != "" || strings.Contains(r.URL.Path, "/upload/resumable/")
	}
	p.mu.Unlock()
	start := time.Now()
	err := b.Put(ctx, "doomed", bytes.NewReader(data), int64(len(data)), storage.PutOptions{})
	if err == nil {
		t.Fatal("Put whose chunks always fail succeeded")
	}
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("failing Put took %s", d)
	}
	t.Logf("after %s and %d requests: %v", time.Since(start).Round(time.Millisecond), len(p.uploads()), err)
	p.mu.Lock()
	p.fail = nil
	p.mu.Unlock()
	if _, err := b.Stat(ctx, "doomed"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Stat after failed Put = %v, want ErrNotExist", err)
	}
}
