package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// GCSServer is a running fake-gcs-server, the Google Cloud Storage
// emulator.
type GCSServer struct {
	// Host is host:port, the value for STORAGE_EMULATOR_HOST.
	Host string
}

// URL returns the server's base URL, http://host:port.
func (s GCSServer) URL() string { return "http://" + s.Host }

var fakeGCS struct {
	once sync.Once
	srv  GCSServer
	err  error
}

// fakeGCSDirPrefix names the data directories of servers in os.TempDir;
// the suffix is the pid of the test binary that owns it.
const fakeGCSDirPrefix = "bcloud-fakegcs-"

// FakeGCS returns the fake-gcs-server shared by all tests of the test
// binary, starting it on first use. It listens on 127.0.0.1 over plain
// HTTP with a filesystem backend, and dies with the test binary.
func FakeGCS(t testing.TB) GCSServer {
	t.Helper()
	bin := Tool(t, "fake-gcs-server")
	fakeGCS.once.Do(func() { fakeGCS.srv, fakeGCS.err = startFakeGCS(t, bin) })
	if fakeGCS.err != nil {
		t.Fatalf("fake-gcs-server: %v", fakeGCS.err)
	}
	if fakeGCS.srv.Host == "" {
		t.Fatal("fake-gcs-server failed to start in an earlier test")
	}
	return fakeGCS.srv
}

func startFakeGCS(t testing.TB, bin string) (GCSServer, error) {
	removeStaleFakeGCSDirs()
	dir, err := os.MkdirTemp("", fakeGCSDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return GCSServer{}, err
	}
	port := FreePort(t)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	p := Start(t, dir, bin, nil,
		"-scheme", "http",
		"-host", "127.0.0.1",
		"-port", strconv.Itoa(port),
		"-backend", "filesystem",
		"-filesystem-root", filepath.Join(dir, "data"),
		"-public-host", host,
		// Resumable uploads continue at the URL of this Location header.
		"-external-url", "http://"+host,
		"-log-level", "warn",
	)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/_internal/healthcheck")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return GCSServer{Host: host}, nil
			}
		}
		if time.Now().After(deadline) {
			p.Stop()
			return GCSServer{}, fmt.Errorf("not ready on %s within 30s; log:\n%s", host, p.Tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeStaleFakeGCSDirs deletes the data directories of servers whose
// test binary has exited.
func removeStaleFakeGCSDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), fakeGCSDirPrefix+"*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), fakeGCSDirPrefix)
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(m)
		}
	}
}

// NewBucket creates an empty bucket with a unique name and returns the
// name. The bucket and its objects are deleted when t ends.
func (s GCSServer) NewBucket(t testing.TB) string {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "test-" + hex.EncodeToString(rnd[:])
	body, _ := json.Marshal(map[string]string{"name": name})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.call(ctx, http.MethodPost, "/storage/v1/b?project=test", body, nil); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.removeBucket(ctx, name); err != nil {
			t.Logf("remove bucket %s: %v", name, err)
		}
	})
	return name
}

// removeBucket deletes every object of a bucket, then the bucket.
func (s GCSServer) removeBucket(ctx context.Context, name string) error {
	for {
		var page struct {
			Items []struct {
				Name string `json:"name"`
			} `json:"items"`
		}
		if err := s.call(ctx, http.MethodGet, "/storage/v1/b/"+url.PathEscape(name)+"/o?maxResults=1000", nil, &page); err != nil {
			return err
		}
		if len(page.Items) == 0 {
			break
		}
		for _, it := range page.Items {
			path := "/storage/v1/b/" + url.PathEscape(name) + "/o/" + url.PathEscape(it.Name)
			if err := s.call(ctx, http.MethodDelete, path, nil, nil); err != nil {
				return err
			}
		}
	}
	return s.call(ctx, http.MethodDelete, "/storage/v1/b/"+url.PathEscape(name), nil, nil)
}

// call sends one JSON API request and decodes the answer into out.
func (s GCSServer) call(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL()+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 && !(method == http.MethodDelete && resp.StatusCode == http.StatusNotFound) {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
