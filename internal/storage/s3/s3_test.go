package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/s3"
	"github.com/bcloud-dev/bcloud/internal/storage/storagetest"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// config returns a driver Config for bucket on srv with its root keys.
func config(srv testenv.S3Server, bucket string) s3.Config {
	return s3.Config{
		Bucket:          bucket,
		Endpoint:        srv.Endpoint,
		Region:          srv.Region,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: storage.Secret(srv.Secret),
		CABundle:        srv.CAPEM,
	}
}

// open opens cfg and closes the bucket when t ends.
func open(t *testing.T, cfg s3.Config) storage.Bucket {
	t.Helper()
	b, err := s3.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	srv := testenv.VersityGW(t)
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Bucket {
			return open(t, config(srv, srv.NewBucket(t)))
		},
	})
}

// TestConformanceChecksums runs the suite with the SDK's flexible checksums
// on (CRC32C on every PutObject and UploadPart) and small parts, so that
// multipart uploads with part checksums are exercised too.
func TestConformanceChecksums(t *testing.T) {
	srv := testenv.VersityGW(t)
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Bucket {
			cfg := config(srv, srv.NewBucket(t))
			cfg.RequestChecksumCalculation = "when_supported"
			cfg.ResponseChecksumValidation = "when_supported"
			cfg.PartSize = 5 << 20
			return open(t, cfg)
		},
		LargeSize: 23 << 20,
	})
}

// smallParts returns cfg with the smallest part size S3 allows.
func smallParts(cfg s3.Config) s3.Config {
	cfg.PartSize = 5 << 20
	cfg.Concurrency = 2
	return cfg
}

// uploads lists the multipart uploads in progress in bucket.
func uploads(t *testing.T, srv testenv.S3Server, bucket string) []string {
	t.Helper()
	out, err := srv.Client().ListMultipartUploads(t.Context(), &s3api.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

func TestMultipartUsedAndVerified(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	for _, mode := range []string{"when_required", "when_supported"} {
		t.Run(mode, func(t *testing.T) {
			p := newProxy(t, srv.Endpoint, nil)
			cfg := smallParts(config(srv, bucket))
			cfg.Endpoint = p.URL
			cfg.RequestChecksumCalculation = mode
			b := open(t, cfg)
			key := "mp/" + mode
			data := bytes.Repeat([]byte("0123456789abcdef"), (12<<20)/16+7)
			if err := b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), storage.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := storage.ReadAll(t.Context(), b, key)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes (err %v), want %d identical", len(got), err, len(data))
			}
			parts := p.requests(func(r request) bool { return r.Method == http.MethodPut && r.has("partNumber") })
			if len(parts) != 3 {
				t.Fatalf("%d UploadPart requests, want 3 (5+5+2 MiB)", len(parts))
			}
			for _, r := range parts {
				sums := r.checksumHeaders()
				switch mode {
				case "when_required":
					if r.Header.Get("Content-Md5") == "" || len(sums) > 0 {
						t.Errorf("when_required part: Content-MD5 %q, checksum headers %v; want MD5 only",
							r.Header.Get("Content-Md5"), sums)
					}
				case "when_supported":
					if len(sums) == 0 {
						t.Errorf("when_supported part carries no checksum header")
					}
				}
			}
			if n := len(uploads(t, srv, bucket)); n != 0 {
				t.Fatalf("%d multipart uploads left open", n)
			}
		})
	}
}

func TestSinglePutHeaders(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	p := newProxy(t, srv.Endpoint, nil)
	cfg := config(srv, bucket)
	cfg.Endpoint = p.URL
	b := open(t, cfg)
	opts := storage.PutOptions{Tags: map[string]string{"kind": "wal file", "cluster": "pg-1"}, IfNotExist: true}
	if err := b.Put(t.Context(), "tagged", strings.NewReader("data"), 4, opts); err != nil {
		t.Fatal(err)
	}
	puts := p.requests(func(r request) bool { return r.Method == http.MethodPut })
	if len(puts) != 1 {
		t.Fatalf("%d PUT requests, want 1", len(puts))
	}
	h := puts[0].Header
	if h.Get("Content-Md5") == "" || len(puts[0].checksumHeaders()) > 0 {
		t.Errorf("endpoint default (when_required): Content-MD5 %q, checksum headers %v", h.Get("Content-Md5"), puts[0].checksumHeaders())
	}
	if got := h.Get("If-None-Match"); got != "*" {
		t.Errorf("If-None-Match = %q, want *", got)
	}
	if got := h.Get("X-Amz-Tagging"); got != "cluster=pg-1&kind=wal+file" {
		t.Errorf("X-Amz-Tagging = %q", got)
	}
	if sha := h.Get("X-Amz-Content-Sha256"); sha == "" || strings.HasPrefix(sha, "STREAMING") {
		t.Errorf("X-Amz-Content-Sha256 = %q, want the payload hash", sha)
	}
	tags, err := srv.Client().GetObjectTagging(t.Context(), &s3api.GetObjectTaggingInput{Bucket: &bucket, Key: aws.String("tagged")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range tags.TagSet {
		got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if got["kind"] != "wal file" || got["cluster"] != "pg-1" {
		t.Errorf("stored tags = %v", got)
	}
}

func TestSSEHeaders(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	// versitygw does not implement SSE, so the headers are checked at a
	// stand-in that answers the writes itself.
	p := newProxy(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodPut:
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("ETag", `"e"`)
			w.WriteHeader(http.StatusOK)
		case r.Method == http.MethodPost && r.URL.Query().Has("uploads"):
			w.Header().Set("Content-Type", "application/xml")
			_, _ = w.Write([]byte(`<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>`))
		case r.Method == http.MethodPost:
			w.Header().Set("Content-Type", "application/xml")
			_, _ = w.Write([]byte(`<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"e"</ETag></CompleteMultipartUploadResult>`))
		default:
			return false
		}
		return true
	})
	cfg := smallParts(config(srv, bucket))
	cfg.Endpoint = p.URL
	cfg.ServerSideEncryption = "aws:kms"
	cfg.SSEKMSKeyID = "arn:aws:kms:us-east-1:1:key/k1"
	b := open(t, cfg)
	if err := b.Put(t.Context(), "small", strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "big", &endlessReader{n: 6 << 20}, -1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range p.requests(func(r request) bool { return r.Method == http.MethodPut && !r.has("partNumber") || r.has("uploads") }) {
		if r.Header.Get("X-Amz-Server-Side-Encryption") != "aws:kms" ||
			r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id") != cfg.SSEKMSKeyID {
			t.Errorf("%s %v lacks SSE headers: %v", r.Method, r.Query, r.Header)
		}
	}
	if n := len(p.requests(func(r request) bool { return r.has("uploads") })); n != 1 {
		t.Errorf("%d CreateMultipartUpload requests, want 1", n)
	}
}

func TestMultipartConditionalRace(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	b := open(t, smallParts(config(srv, bucket)))
	const writers = 3
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Put(t.Context(), "race", &endlessReader{n: 11 << 20, state: uint64(i)}, -1, storage.PutOptions{IfNotExist: true})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, storage.ErrExists):
			t.Errorf("racing multipart put: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racing multipart conditional puts won, want 1", wins)
	}
	err := b.Put(t.Context(), "race", &endlessReader{n: 11 << 20}, 11<<20, storage.PutOptions{IfNotExist: true})
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("conditional multipart put over an existing key = %v, want ErrExists", err)
	}
	if left := uploads(t, srv, bucket); len(left) != 0 {
		t.Fatalf("multipart uploads left open: %v", left)
	}
}

// TestMultipartCompleteIsConditional makes the early existence check miss
// (the key appears after it), so only If-None-Match on
// CompleteMultipartUpload can refuse the write.
func TestMultipartCompleteIsConditional(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	direct := open(t, config(srv, bucket))
	var once sync.Once
	p := newProxy(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Has("uploads") {
			once.Do(func() {
				if err := direct.Put(r.Context(), "late", strings.NewReader("first"), 5, storage.PutOptions{}); err != nil {
					t.Errorf("put late: %v", err)
				}
			})
		}
		return false
	})
	cfg := smallParts(config(srv, bucket))
	cfg.Endpoint = p.URL
	b := open(t, cfg)
	err := b.Put(t.Context(), "late", &endlessReader{n: 6 << 20}, -1, storage.PutOptions{IfNotExist: true})
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("Put = %v, want ErrExists", err)
	}
	if got, _ := storage.ReadAll(t.Context(), b, "late"); string(got) != "first" {
		t.Fatalf("object = %q, want the first writer's", got)
	}
	completes := p.requests(func(r request) bool { return r.Method == http.MethodPost && r.has("uploadId") })
	if len(completes) != 1 || completes[0].Header.Get("If-None-Match") != "*" {
		t.Fatalf("CompleteMultipartUpload requests %d, If-None-Match %v", len(completes), completes)
	}
	if left := uploads(t, srv, bucket); len(left) != 0 {
		t.Fatalf("multipart uploads left open: %v", left)
	}
}

// failAfter yields n bytes, then fails.
type failAfter struct{ r io.Reader }

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("source broke")
	}
	return n, err
}

func TestMultipartAbortedOnFailure(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	b := open(t, smallParts(config(srv, bucket)))

	err := b.Put(t.Context(), "broken", &failAfter{r: &endlessReader{n: 12 << 20}}, -1, storage.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), "source broke") {
		t.Fatalf("Put from a failing reader = %v", err)
	}
	err = b.Put(t.Context(), "short", &endlessReader{n: 12 << 20}, 20<<20, storage.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), "expected") {
		t.Fatalf("Put of a short body = %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	go func() {
		// Two parts go out, then the caller gives up and, like any
		// well-behaved producer, closes its end.
		_, _ = io.Copy(pw, &endlessReader{n: 11 << 20})
		cancel()
		_ = pw.CloseWithError(context.Canceled)
	}()
	err = b.Put(ctx, "cancelled", pr, -1, storage.PutOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled multipart Put = %v, want context.Canceled", err)
	}
	for _, key := range []string{"broken", "short", "cancelled"} {
		if _, err := b.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Stat(%s) = %v, want ErrNotExist", key, err)
		}
	}
	if left := uploads(t, srv, bucket); len(left) != 0 {
		t.Fatalf("multipart uploads left open: %v", left)
	}
}

func TestBoundedMemory(t *testing.T) {
	srv := testenv.VersityGW(t)
	cfg := smallParts(config(srv, srv.NewBucket(t)))
	b := open(t, cfg)
	const size = 64 << 20

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	err := b.Put(t.Context(), "big", &endlessReader{n: size}, -1, storage.PutOptions{})
	close(done)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	grew := int64(peak.Load()) - int64(base)
	t.Logf("heap in use grew by %.1f MiB at most during a %d MiB unknown-size upload (2 x 5 MiB parts)", float64(grew)/(1<<20), size>>20)
	if grew > 40<<20 {
		t.Fatalf("heap grew by %d MiB during a %d MiB upload: memory is not bounded by the part buffers", grew>>20, size>>20)
	}
	info, err := b.Stat(t.Context(), "big")
	if err != nil || info.Size != size {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
}
