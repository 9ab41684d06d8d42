package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// Azurite's well-known development account. The key is public, documented
// by Microsoft for the emulator, and grants nothing outside it.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// AzuriteServer is a running azurite-blob shared by the tests of one binary.
type AzuriteServer struct {
	// Endpoint is the account URL, http(s)://127.0.0.1:PORT/devstoreaccount1.
	Endpoint string
	Account  string
	Key      string
	// ConnectionString addresses the account with its shared key.
	ConnectionString string
	// CAPEM is the PEM of the CA that signed the server certificate, for the
	// HTTPS variant; nil for plain HTTP.
	CAPEM []byte
}

type azuriteInstance struct {
	once sync.Once
	srv  AzuriteServer
	proc *Process
	dir  string
	err  string
}

var (
	azuriteHTTP  azuriteInstance
	azuriteHTTPS azuriteInstance
)

// Azurite returns the shared plain-HTTP azurite-blob, starting it on first
// use. A missing azurite skips the test (fails it in CI).
func Azurite(t testing.TB) AzuriteServer {
	t.Helper()
	return azuriteHTTP.get(t, false)
}

// AzuriteTLS returns a second shared azurite-blob that serves HTTPS with a
// certificate for 127.0.0.1 signed by a CA generated for the test binary;
// the CA is in CAPEM and in no system trust store.
func AzuriteTLS(t testing.TB) AzuriteServer {
	t.Helper()
	return azuriteHTTPS.get(t, true)
}

// StopAzurite stops the servers this binary started and removes their
// data. Call it from TestMain after m.Run.
func StopAzurite() {
	for _, in := range []*azuriteInstance{&azuriteHTTP, &azuriteHTTPS} {
		in.proc.Stop()
		if in.dir != "" {
			_ = os.RemoveAll(in.dir)
		}
	}
}

func (in *azuriteInstance) get(t testing.TB, useTLS bool) AzuriteServer {
	t.Helper()
	bin := filepath.Join(CacheDir(), "azurite", "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(bin); err != nil {
		Missing(t, "azurite-blob")
	}
	in.once.Do(func() { in.start(bin, useTLS) })
	if in.err != "" {
		t.Fatal(in.err)
	}
	return in.srv
}

func (in *azuriteInstance) start(bin string, useTLS bool) {
	sweepAzuriteDirs()
	dir, err := os.MkdirTemp("", azuriteDirPrefix+"*")
	if err != nil {
		in.err = fmt.Sprintf("azurite work dir: %v", err)
		return
	}
	in.dir = dir
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		in.err = fmt.Sprintf("azurite work dir: %v", err)
		return
	}
	port, err := freePort()
	if err != nil {
		in.err = fmt.Sprintf("azurite port: %v", err)
		return
	}
	args := []string{
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--location", filepath.Join(dir, "data"), "--silent",
		"--skipApiVersionCheck", "--loose", "--disableTelemetry",
	}
	scheme := "http"
	var caPEM []byte
	if useTLS {
		ca, certFile, keyFile, err := writeTestCerts(dir)
		if err != nil {
			in.err = fmt.Sprintf("azurite certificate: %v", err)
			return
		}
		args = append(args, "--cert", certFile, "--key", keyFile)
		scheme, caPEM = "https", ca
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		in.err = fmt.Sprintf("azurite data dir: %v", err)
		return
	}
	proc, err := startProcess(dir, bin, args...)
	if err != nil {
		in.err = err.Error()
		return
	}
	in.proc = proc
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if !waitTCP(addr, 60*time.Second) {
		in.err = fmt.Sprintf("azurite-blob did not listen on %s within 60s; log:\n%s", addr, proc.Tail())
		return
	}
	endpoint := fmt.Sprintf("%s://%s/%s", scheme, addr, AzuriteAccount)
	in.srv = AzuriteServer{
		Endpoint: endpoint,
		Account:  AzuriteAccount,
		Key:      AzuriteKey,
		ConnectionString: fmt.Sprintf("DefaultEndpointsProtocol=%s;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
			scheme, AzuriteAccount, AzuriteKey, endpoint),
		CAPEM: caPEM,
	}
}

const azuriteDirPrefix = "bcloud-azurite-"

// sweepAzuriteDirs removes the work directories of test binaries that
// exited without StopAzurite (a package without TestMain, or a crash).
func sweepAzuriteDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), azuriteDirPrefix+"*"))
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(data))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// NewContainer creates a container with a unique name and deletes it when
// the test ends.
func (s AzuriteServer) NewContainer(t testing.TB) string {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "t-" + hex.EncodeToString(rnd[:])
	c := s.containerClient(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("create azurite container %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.Delete(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerNotFound) {
			t.Logf("delete azurite container %s: %v", name, err)
		}
	})
	return name
}

// ContainerSAS mints a container SAS token (without a leading "?") valid
// for an hour, with perms such as "racwdlt" (read, add, create, write,
// delete, list, tag).
func (s AzuriteServer) ContainerSAS(t testing.TB, containerName, perms string) string {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(s.Account, s.Key)
	if err != nil {
		t.Fatalf("azurite shared key: %v", err)
	}
	q, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     time.Now().Add(-5 * time.Minute).UTC(),
		ExpiryTime:    time.Now().Add(time.Hour).UTC(),
		Permissions:   perms,
		ContainerName: containerName,
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatalf("sign container SAS: %v", err)
	}
	return q.Encode()
}

func (s AzuriteServer) containerClient(t testing.TB, name string) *container.Client {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(s.Account, s.Key)
	if err != nil {
		t.Fatalf("azurite shared key: %v", err)
	}
	var opts *container.ClientOptions
	if s.CAPEM != nil {
		opts = &container.ClientOptions{}
		opts.Transport = tlsClient(s.CAPEM)
	}
	c, err := container.NewClientWithSharedKeyCredential(s.Endpoint+"/"+name, cred, opts)
	if err != nil {
		t.Fatalf("azurite container client: %v", err)
	}
	return c
}

// startProcess is Start for the once-per-binary start, which has no test
// of its own to fail.
func startProcess(dir, bin string, args ...string) (*Process, error) {
	logPath := filepath.Join(dir, "azurite-blob.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create azurite log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// The server dies with the test binary even when StopAzurite is not called.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start azurite-blob: %w", err)
	}
	return &Process{Cmd: cmd, Log: logPath}, nil
}

// tlsClient is an HTTP client that trusts only caPEM.
func tlsClient(caPEM []byte) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitTCP(addr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
