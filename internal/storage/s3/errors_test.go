package s3_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/s3"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func TestMissingBucket(t *testing.T) {
	srv := testenv.VersityGW(t)
	b := open(t, config(srv, "no-such-bucket-here"))
	check := func(op string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s on a missing bucket succeeded", op)
		}
		msg := err.Error()
		if !strings.Contains(msg, `bucket "no-such-bucket-here" does not exist`) || !strings.Contains(msg, "create it") {
			t.Errorf("%s error %q does not name the bucket and the fix", op, msg)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%s error spans lines: %q", op, msg)
		}
		t.Logf("%s: %v", op, err)
	}
	check("put", b.Put(t.Context(), "k", strings.NewReader("x"), 1, storage.PutOptions{}))
	_, err := b.Get(t.Context(), "k", 0, -1)
	check("get", err)
	check("list", b.List(t.Context(), "", func(storage.ObjectInfo) error { return nil }))
}

func TestUnreachableEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	_ = l.Close() // nothing listens there now
	b := open(t, s3.Config{Bucket: "b", Endpoint: endpoint, AccessKeyID: "k", SecretAccessKey: "s"})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	start := time.Now()
	err = b.Put(ctx, "k", strings.NewReader("x"), 1, storage.PutOptions{})
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("Put to a closed port took %s", d)
	}
	if err == nil || !strings.Contains(err.Error(), "cannot reach S3 endpoint "+endpoint) ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Put to a closed port = %v", err)
	}
	t.Logf("error: %v", err)
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  s3.Config
		want string
	}{
		{s3.Config{}, "no bucket"},
		{s3.Config{Bucket: "b", Endpoint: "minio:9000"}, "not an http(s) URL"},
		{s3.Config{Bucket: "b", RequestChecksumCalculation: "always"}, "when_supported or when_required"},
	} {
		if _, err := s3.Open(t.Context(), c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
}

func TestDeleteBatches(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	p := newProxy(t, srv.Endpoint, nil)
	cfg := config(srv, bucket)
	cfg.Endpoint = p.URL
	b := open(t, cfg)
	const n = 1003
	ks := make([]string, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range ks {
		ks[i] = fmt.Sprintf("d/%04d", i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := b.Put(t.Context(), ks[i], strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
				t.Errorf("Put: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := b.Delete(t.Context(), ks...); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, b); len(got) != 0 {
		t.Fatalf("%d keys left after Delete", len(got))
	}
	bulk := p.requests(func(r request) bool { return r.Method == http.MethodPost && r.has("delete") })
	if len(bulk) != 2 {
		t.Fatalf("%d DeleteObjects requests for %d keys, want 2", len(bulk), n)
	}
	for _, r := range bulk {
		if r.Header.Get("Content-Md5") == "" {
			t.Errorf("DeleteObjects without Content-MD5 (older S3-compatible stores require it)")
		}
	}
}

func TestDeleteFallsBackWithoutBulkDelete(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	p := newProxy(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
			s3Error(w, http.StatusNotImplemented, "NotImplemented", "A header you provided implies functionality that is not implemented")
			return true
		}
		return false
	})
	cfg := config(srv, bucket)
	cfg.Endpoint = p.URL
	cfg.MaxAttempts = 1
	b := open(t, cfg)
	for i := range 5 {
		if err := b.Put(t.Context(), fmt.Sprintf("f/%d", i), strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := b.Delete(t.Context(), "f/0", "f/1", "f/2", "f/missing"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if got := keys(t, b); strings.Join(got, ",") != "f/3,f/4" {
		t.Fatalf("keys after Delete = %v, want [f/3 f/4]", got)
	}
	if n := len(p.requests(func(r request) bool { return r.has("delete") })); n != 1 {
		t.Errorf("%d DeleteObjects attempts, want 1 (then remembered as unsupported)", n)
	}
}

func TestDeleteReportsPerKeyErrors(t *testing.T) {
	srv := testenv.VersityGW(t)
	p := newProxy(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			_, _ = w.Write([]byte(`<DeleteResult><Error><Key>a</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>`))
			return true
		}
		return false
	})
	cfg := config(srv, srv.NewBucket(t))
	cfg.Endpoint = p.URL
	err := open(t, cfg).Delete(t.Context(), "a", "b")
	if err == nil || !strings.Contains(err.Error(), "1 of 2 keys not deleted") || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("Delete with a per-key failure = %v", err)
	}
}

// TestReadTimeout serves a body that stalls: the read must fail after
// ReadTimeout instead of hanging.
func TestReadTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer s.Close()
	b := open(t, s3.Config{Bucket: "b", Endpoint: s.URL, AccessKeyID: "k", SecretAccessKey: "s",
		ReadTimeout: 300 * time.Millisecond, MaxAttempts: 1})
	rc, err := b.Get(t.Context(), "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	start := time.Now()
	_, err = io.ReadAll(rc)
	if err == nil {
		t.Fatal("read of a stalled body succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stalled read failed only after %s", d)
	}
	t.Logf("error after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestResponseHeaderTimeout: a server that never answers fails the call.
func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer s.Close()
	b := open(t, s3.Config{Bucket: "b", Endpoint: s.URL, AccessKeyID: "k", SecretAccessKey: "s",
		ReadTimeout: 300 * time.Millisecond, MaxAttempts: 2})
	start := time.Now()
	_, err := b.Stat(t.Context(), "k")
	if err == nil || errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Stat against a silent server = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("silent server failed the call only after %s", d)
	}
	t.Logf("error after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestGetPastEnd(t *testing.T) {
	srv := testenv.VersityGW(t)
	b := open(t, config(srv, srv.NewBucket(t)))
	if err := b.Put(t.Context(), "k", strings.NewReader("0123456789"), 10, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		off, n int64
		want   string
	}{{10, -1, ""}, {20, 5, ""}, {3, 0, ""}, {8, 10, "89"}} {
		rc, err := b.Get(t.Context(), "k", c.off, c.n)
		if err != nil {
			t.Fatalf("Get(%d, %d): %v", c.off, c.n, err)
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || string(got) != c.want {
			t.Errorf("Get(%d, %d) = %q, %v; want %q", c.off, c.n, got, err, c.want)
		}
	}
	if _, err := b.Get(t.Context(), "missing", 3, 0); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("zero-length Get of a missing key = %v", err)
	}
}
