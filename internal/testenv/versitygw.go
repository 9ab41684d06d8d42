package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is a running S3-compatible server (versitygw) shared by the
// tests of one test binary.
type S3Server struct {
	// Endpoint is the base URL, http:// or https://.
	Endpoint  string
	AccessKey string
	Secret    string
	Region    string
	// CAPEM is the PEM of the CA that signed the server's certificate
	// (TLS servers only).
	CAPEM []byte
	// Root is the directory holding the buckets (posix backend).
	Root string
}

type sharedServer struct {
	once sync.Once
	srv  S3Server
	err  string
}

var (
	plainGW    sharedServer
	tlsGW      sharedServer
	bucketSeq  atomic.Int64
	rootPrefix = "bcloud-versitygw-"
)

// VersityGW returns a versitygw serving plain HTTP on 127.0.0.1, started
// once per test binary with a posix backend in a temporary directory.
func VersityGW(t testing.TB) S3Server {
	t.Helper()
	return plainGW.get(t, false)
}

// VersityGWTLS returns a versitygw serving HTTPS on 127.0.0.1 with a
// certificate signed by a CA made for the test binary; S3Server.CAPEM holds
// that CA.
func VersityGWTLS(t testing.TB) S3Server {
	t.Helper()
	return tlsGW.get(t, true)
}

func (s *sharedServer) get(t testing.TB, useTLS bool) S3Server {
	t.Helper()
	bin := Tool(t, "versitygw")
	s.once.Do(func() {
		s.err = "versitygw did not start (see the first test that used it)"
		srv, err := startVersityGW(t, bin, useTLS)
		if err != nil {
			s.err = err.Error()
			return
		}
		s.srv, s.err = srv, ""
	})
	if s.err != "" {
		t.Fatal(s.err)
	}
	return s.srv
}

// startVersityGW starts the server. Its process dies with the test binary;
// its root directory is named after the binary's pid so that the next run
// removes what a finished run left behind.
func startVersityGW(t testing.TB, bin string, useTLS bool) (S3Server, error) {
	removeStaleRoots()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", rootPrefix, os.Getpid()))
	if err != nil {
		return S3Server{}, err
	}
	root := filepath.Join(dir, "data")
	if err := os.Mkdir(root, 0o755); err != nil {
		return S3Server{}, err
	}
	srv := S3Server{
		AccessKey: "bcloudtestkey",
		Secret:    "bcloudtestsecret" + strconv.Itoa(os.Getpid()),
		Region:    "us-east-1",
		Root:      root,
	}
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"--access", srv.AccessKey, "--secret", srv.Secret, "--region", srv.Region,
		"--port", addr, "--quiet"}
	scheme := "http"
	if useTLS {
		caPEM, certFile, keyFile, err := writeTestCerts(dir)
		if err != nil {
			return S3Server{}, fmt.Errorf("make test certificates: %w", err)
		}
		srv.CAPEM = caPEM
		args = append(args, "--cert", certFile, "--key", keyFile)
		scheme = "https"
	}
	args = append(args, "posix", root)
	p := Start(t, dir, bin, nil, args...)
	srv.Endpoint = fmt.Sprintf("%s://%s", scheme, addr)
	if err := waitHTTP(srv, 30*time.Second); err != nil {
		p.Stop()
		return S3Server{}, fmt.Errorf("versitygw on %s: %w\n%s", addr, err, p.Tail())
	}
	return srv, nil
}

// waitHTTP waits until the server answers an HTTP request.
func waitHTTP(srv S3Server, timeout time.Duration) error {
	hc := httpClient(srv)
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := hc.Get(srv.Endpoint + "/")
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer within %s: %w", timeout, last)
}

// removeStaleRoots deletes the root directories of earlier test binaries
// that are no longer running.
func removeStaleRoots() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), rootPrefix+"*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), rootPrefix)
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
			_ = os.RemoveAll(m)
		}
	}
}

func httpClient(srv S3Server) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(srv.CAPEM) > 0 {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(srv.CAPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Client returns an SDK client for the server with its root credentials.
func (s S3Server) Client() *s3api.Client {
	return s3api.New(s3api.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.Secret, ""),
		HTTPClient:   httpClient(s),
	})
}

// NewBucket creates a bucket with a unique name for t and returns the name.
// Its directory is removed when t ends.
func (s S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := bucketName(t.Name())
	if _, err := s.Client().CreateBucket(Context(t), &s3api.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join(s.Root, name)) })
	return name
}

// bucketName makes a valid, unique S3 bucket name from a test name.
func bucketName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	base := strings.Trim(b.String(), "-")
	suffix := fmt.Sprintf("-%d-%d", os.Getpid()%100000, bucketSeq.Add(1))
	if len(base) > 63-len(suffix)-1 {
		base = strings.TrimRight(base[:63-len(suffix)-1], "-")
	}
	return "t" + base + suffix
}
