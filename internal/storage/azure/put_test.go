package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// smallBlocks opens a bucket on a fresh Azurite container whose block
// path starts at 64 KiB, so that tests exercise it with small bodies.
func smallBlocks(t *testing.T) *Bucket {
	t.Helper()
	srv := testenv.Azurite(t)
	b, err := Open(t.Context(), Config{
		AccountURL: srv.Endpoint, Account: srv.Account, Container: srv.NewContainer(t),
		Key: storage.Secret(srv.Key),
	})
	if err != nil {
		t.Fatal(err)
	}
	bk := b.(*Bucket)
	bk.blockSize = 64 << 10
	bk.singlePutMax = 64 << 10
	bk.concurrency = 3
	return bk
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return p
}

func TestBlockPathRoundTrip(t *testing.T) {
	b := smallBlocks(t)
	for _, n := range []int{64<<10 + 1, 5 * 64 << 10, 7*64<<10 + 12345} {
		for _, size := range []int64{int64(n), -1} {
			data := randomBytes(t, n)
			key := fmt.Sprintf("blocks/%d/%d", n, size)
			if err := b.Put(t.Context(), key, bytes.NewReader(data), size, storage.PutOptions{}); err != nil {
				t.Fatalf("Put %s: %v", key, err)
			}
			got, err := storage.ReadAll(t.Context(), b, key)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: read %d bytes (%v), want %d identical", key, len(got), err, n)
			}
		}
	}
}

func TestBlockPathSizeMismatch(t *testing.T) {
	b := smallBlocks(t)
	data := randomBytes(t, 200<<10)
	for _, size := range []int64{300 << 10, 100 << 10} {
		err := b.Put(t.Context(), "mismatch", bytes.NewReader(data), size, storage.PutOptions{})
		if err == nil {
			t.Fatalf("Put of %d bytes declared as %d succeeded", len(data), size)
		}
	}
	if _, err := b.Stat(t.Context(), "mismatch"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("a mismatched Put left an object: %v", err)
	}
}

// blockingReader yields n bytes, then signals and waits for ctx.
type blockingReader struct {
	ctx     context.Context
	n       int
	reached chan struct{}
	once    sync.Once
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		k := min(len(p), r.n)
		r.n -= k
		return k, nil
	}
	r.once.Do(func() { close(r.reached) })
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func TestBlockPathCancelLeavesNothing(t *testing.T) {
	b := smallBlocks(t)
	if err := b.Put(t.Context(), "keep", strings.NewReader("old"), 3, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"new", "keep"} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &blockingReader{ctx: ctx, n: 5 * 64 << 10, reached: make(chan struct{})}
		done := make(chan error, 1)
		go func() { done <- b.Put(ctx, key, r, -1, storage.PutOptions{}) }()
		<-r.reached // several blocks staged or in flight
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled block Put of %s = %v, want context.Canceled", key, err)
		}
	}
	if _, err := b.Stat(t.Context(), "new"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("cancelled block Put left an object: %v", err)
	}
	if got, err := storage.ReadAll(t.Context(), b, "keep"); err != nil || string(got) != "old" {
		t.Fatalf("cancelled block Put changed the old object: %q, %v", got, err)
	}
	var listed []string
	_ = b.List(t.Context(), "", func(o storage.ObjectInfo) error { listed = append(listed, o.Key); return nil })
	if len(listed) != 1 || listed[0] != "keep" {
		t.Fatalf("List = %v, want [keep]", listed)
	}
}

func TestBlockPathConditional(t *testing.T) {
	b := smallBlocks(t)
	opts := storage.PutOptions{IfNotExist: true}
	body := randomBytes(t, 3*64<<10)
	if err := b.Put(t.Context(), "cond", bytes.NewReader(body), -1, opts); err != nil {
		t.Fatal(err)
	}
	err := b.Put(t.Context(), "cond", bytes.NewReader(body), -1, opts)
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second conditional block Put = %v, want ErrExists", err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			err := b.Put(t.Context(), "race", bytes.NewReader(body), int64(len(body)), opts)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, storage.ErrExists):
				t.Errorf("racing conditional block Put: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d racing conditional block Puts won, want 1", wins.Load())
	}
}

func TestTagsAndMD5(t *testing.T) {
	b := smallBlocks(t)
	tags := map[string]string{"backup": "20240101T000000", "kind": "wal"}
	small := []byte("small object with tags")
	large := randomBytes(t, 3*64<<10)
	for key, data := range map[string][]byte{"small": small, "large": large} {
		opts := storage.PutOptions{Tags: tags, ContentType: "text/plain"}
		if err := b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), opts); err != nil {
			t.Fatalf("Put %s with tags: %v", key, err)
		}
		bc := b.client.NewBlobClient(key)
		resp, err := bc.GetTags(t.Context(), nil)
		if err != nil {
			t.Fatalf("GetTags %s: %v", key, err)
		}
		got := map[string]string{}
		for _, tag := range resp.BlobTagSet {
			got[*tag.Key] = *tag.Value
		}
		if fmt.Sprint(got) != fmt.Sprint(tags) {
			t.Errorf("%s tags = %v, want %v", key, got, tags)
		}
		props, err := bc.GetProperties(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if props.ContentType == nil || *props.ContentType != "text/plain" {
			t.Errorf("%s content type = %v", key, props.ContentType)
		}
	}
	// The single upload carried its MD5, which the service stored.
	props, err := b.client.NewBlobClient("small").GetProperties(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(small)
	if !bytes.Equal(props.ContentMD5, sum[:]) {
		t.Errorf("stored Content-MD5 = %x, want %x", props.ContentMD5, sum)
	}
}

func TestGetPastEnd(t *testing.T) {
	b := smallBlocks(t)
	if err := b.Put(t.Context(), "e", strings.NewReader(""), 0, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "d", strings.NewReader("data"), 4, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key      string
		off, n   int64
		want     string
		notExist bool
	}{
		{"d", 4, -1, "", false},
		{"d", 10, 5, "", false},
		{"d", 2, 0, "", false},
		{"e", 0, 5, "", false},
		{"e", 3, -1, "", false},
		{"missing", 10, 5, "", true},
		{"missing", 0, 0, "", true},
	} {
		rc, err := b.Get(t.Context(), c.key, c.off, c.n)
		if c.notExist {
			if !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("Get(%s, %d, %d) = %v, want ErrNotExist", c.key, c.off, c.n, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Get(%s, %d, %d): %v", c.key, c.off, c.n, err)
			continue
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || string(got) != c.want {
			t.Errorf("Get(%s, %d, %d) read %q, %v; want %q", c.key, c.off, c.n, got, err, c.want)
		}
	}
}

func TestIdleReaderTimesOut(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("some")) }()
	cancel := func() { _ = pw.CloseWithError(context.Canceled) }
	ir := newIdleReader(pr, cancel, 200*time.Millisecond, "get c/k")
	buf := make([]byte, 10)
	if n, err := ir.Read(buf); err != nil || n != 4 {
		t.Fatalf("first Read = %d, %v", n, err)
	}
	// Time between reads does not count.
	time.Sleep(300 * time.Millisecond)
	go func() { _, _ = pw.Write([]byte("more")) }()
	if n, err := ir.Read(buf); err != nil || n != 4 {
		t.Fatalf("Read after a pause = %d, %v", n, err)
	}
	start := time.Now()
	_, err := ir.Read(buf) // nothing more arrives
	if err == nil || !strings.Contains(err.Error(), "no data received for 200ms") || !errors.Is(err, context.Canceled) {
		t.Fatalf("stalled Read = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stalled Read returned after %s", d)
	}
	_ = ir.Close()
}

// TestHeadersSent checks on the wire, through a recording proxy, what
// Azurite accepts silently: the encryption scope on every write and the
// Content-MD5 of single uploads and blocks.
func TestHeadersSent(t *testing.T) {
	srv := testenv.Azurite(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			mu.Lock()
			seen = append(seen, fmt.Sprintf("comp=%s scope=%s md5=%t",
				r.URL.Query().Get("comp"), r.Header.Get("x-ms-encryption-scope"), r.Header.Get("Content-MD5") != ""))
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()

	sb, err := Open(t.Context(), Config{
		AccountURL: front.URL + "/" + srv.Account, Account: srv.Account, Container: srv.NewContainer(t),
		Key: storage.Secret(srv.Key), EncryptionScope: "backup-scope",
	})
	if err != nil {
		t.Fatal(err)
	}
	b := sb.(*Bucket)
	b.blockSize, b.singlePutMax = 64<<10, 64<<10
	if err := b.Put(t.Context(), "single", strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "blocks", bytes.NewReader(randomBytes(t, 100<<10)), -1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"comp= scope=backup-scope md5=true",
		"comp=block scope=backup-scope md5=true",
		"comp=block scope=backup-scope md5=true",
		"comp=blocklist scope=backup-scope md5=false",
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("PUT requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

func TestBlockGrowthUnknownSize(t *testing.T) {
	b := smallBlocks(t)
	b.blockSize, b.singlePutMax, b.growEvery = 16<<10, 16<<10, 2
	data := randomBytes(t, 700<<10)
	if err := b.Put(t.Context(), "grow", bytes.NewReader(data), -1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := storage.ReadAll(t.Context(), b, "grow")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want %d identical", len(got), err, len(data))
	}
	bl, err := b.client.NewBlockBlobClient("grow").GetBlockList(t.Context(), blockblob.BlockListTypeCommitted, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for _, blk := range bl.CommittedBlocks {
		sizes = append(sizes, *blk.Size>>10)
	}
	// 16,16,32,32,64,64 then 128 KiB blocks (the growth stops at 8x).
	want := "[16 16 32 32 64 64 128 128 128 92]"
	if fmt.Sprint(sizes) != want {
		t.Fatalf("block sizes (KiB) = %v, want %s", sizes, want)
	}
}
