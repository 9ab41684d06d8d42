package azure_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/azure"
	"github.com/bcloud-dev/bcloud/internal/storage/storagetest"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopAzurite()
	os.Exit(code)
}

func open(t *testing.T, cfg azure.Config) storage.Bucket {
	t.Helper()
	b, err := azure.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return b
}

func keyConfig(srv testenv.AzuriteServer, container string) azure.Config {
	return azure.Config{
		AccountURL: srv.Endpoint, Account: srv.Account, Container: container,
		Key: storage.Secret(srv.Key), CABundle: srv.CAPEM,
	}
}

func TestConformanceConnectionString(t *testing.T) {
	srv := testenv.Azurite(t)
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Bucket {
			return open(t, azure.Config{
				// The account URL is ignored with a connection string, as
				// barman-cloud ignores the destination's host.
				AccountURL:       "http://192.0.2.1:1/ignored",
				Container:        srv.NewContainer(t),
				ConnectionString: storage.Secret(srv.ConnectionString),
			})
		},
	})
}

func TestConformanceAccountKey(t *testing.T) {
	srv := testenv.Azurite(t)
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Bucket {
			return open(t, keyConfig(srv, srv.NewContainer(t)))
		},
	})
}

func TestConformanceSAS(t *testing.T) {
	srv := testenv.Azurite(t)
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Bucket {
			c := srv.NewContainer(t)
			return open(t, azure.Config{
				AccountURL: srv.Endpoint, Account: srv.Account, Container: c,
				// A leading "?" as the Azure portal copies it.
				SASToken: storage.Secret("?" + srv.ContainerSAS(t, c, "racwdl")),
			})
		},
	})
}

func TestPrivateCA(t *testing.T) {
	srv := testenv.AzuriteTLS(t)
	c := srv.NewContainer(t)
	b := open(t, keyConfig(srv, c))
	if err := b.Put(t.Context(), "ca/ok", strings.NewReader("hello"), 5, storage.PutOptions{}); err != nil {
		t.Fatalf("Put over HTTPS with the private CA: %v", err)
	}
	data, err := storage.ReadAll(t.Context(), b, "ca/ok")
	if err != nil || string(data) != "hello" {
		t.Fatalf("ReadAll = %q, %v", data, err)
	}

	cfg := keyConfig(srv, c)
	cfg.CABundle = nil
	start := time.Now()
	_, err = open(t, cfg).Stat(t.Context(), "ca/ok")
	if err == nil {
		t.Fatal("Stat without the CA succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "certificate") || !strings.Contains(msg, "REQUESTS_CA_BUNDLE") {
		t.Fatalf("error without the CA does not explain the certificate problem: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("certificate failure took %s; it should not be retried", d)
	}

	cfg.CABundle = []byte("not a PEM")
	if _, err := azure.Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "PEM") {
		t.Fatalf("Open with a garbage CA bundle = %v, want an error naming PEM", err)
	}
}

func TestWrongKey(t *testing.T) {
	srv := testenv.Azurite(t)
	c := srv.NewContainer(t)
	// A valid base64 key that is not the account's.
	wrong := "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
	cfg := keyConfig(srv, c)
	cfg.Key = storage.Secret(wrong)
	b := open(t, cfg)
	err := b.Put(t.Context(), "k", strings.NewReader("x"), 1, storage.PutOptions{})
	checkAuthError(t, err, wrong, "AZURE_STORAGE_KEY")
	_, err = b.Stat(t.Context(), "k")
	checkAuthError(t, err, wrong, "AZURE_STORAGE_KEY")

	cfg.Key = "not base64!"
	if _, err := azure.Open(t.Context(), cfg); err == nil || strings.Contains(err.Error(), "not base64!") {
		t.Fatalf("Open with a malformed key = %v, want an error without the key", err)
	}
}

func TestBadSAS(t *testing.T) {
	srv := testenv.Azurite(t)
	c := srv.NewContainer(t)
	// A read-only token cannot write; its signature must not be shown.
	token := srv.ContainerSAS(t, c, "rl")
	b := open(t, azure.Config{AccountURL: srv.Endpoint, Account: srv.Account, Container: c, SASToken: storage.Secret(token)})
	err := b.Put(t.Context(), "k", strings.NewReader("x"), 1, storage.PutOptions{})
	checkAuthError(t, err, token, "AZURE_STORAGE_SAS_TOKEN")
	if strings.Contains(err.Error(), "sig=") {
		t.Fatalf("error shows the SAS signature: %v", err)
	}
}

func TestBadConnectionString(t *testing.T) {
	cs := "AccountName=devstoreaccount1;secret-material-here"
	_, err := azure.Open(t.Context(), azure.Config{Container: "c", ConnectionString: storage.Secret(cs)})
	if err == nil || strings.Contains(err.Error(), "secret-material-here") || !strings.Contains(err.Error(), "AZURE_STORAGE_CONNECTION_STRING") {
		t.Fatalf("Open with a malformed connection string = %v", err)
	}
}

func checkAuthError(t *testing.T, err error, secret, envVar string) {
	t.Helper()
	if err == nil {
		t.Fatal("operation with a bad credential succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, secret) {
		t.Fatalf("error reveals the secret: %v", err)
	}
	if !strings.Contains(msg, "access denied") || !strings.Contains(msg, envVar) {
		t.Fatalf("error does not explain the credential problem: %v", err)
	}
	if strings.Contains(msg, "\n") {
		t.Fatalf("error is not one line: %q", msg)
	}
}

func TestMissingContainer(t *testing.T) {
	srv := testenv.Azurite(t)
	b := open(t, keyConfig(srv, "no-such-container"))
	ctx := t.Context()
	checks := map[string]error{
		"put":  b.Put(ctx, "k", strings.NewReader("x"), 1, storage.PutOptions{}),
		"list": b.List(ctx, "", func(storage.ObjectInfo) error { return nil }),
	}
	_, checks["stat"] = b.Stat(ctx, "k")
	_, checks["get"] = b.Get(ctx, "k", 0, -1)
	for op, err := range checks {
		if !errors.Is(err, azure.ErrContainerNotExist) {
			t.Errorf("%s on a missing container = %v, want ErrContainerNotExist", op, err)
			continue
		}
		if errors.Is(err, storage.ErrNotExist) {
			t.Errorf("%s on a missing container matches ErrNotExist, which means a missing object", op)
		}
		msg := err.Error()
		if !strings.Contains(msg, `"no-such-container"`) || !strings.Contains(msg, "create it") || strings.Contains(msg, "\n") {
			t.Errorf("%s on a missing container: unclear message %q", op, msg)
		}
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	port := testenv.FreePort(t) // nothing listens there
	cfg := azure.Config{
		AccountURL: "http://127.0.0.1:" + strconv.Itoa(port) + "/devstoreaccount1", Account: "devstoreaccount1",
		Container: "c", SASToken: "sv=2020-01-01&sig=c2VjcmV0LXNpZw%3D%3D",
	}
	b := open(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := b.Stat(ctx, "k")
	if err == nil {
		t.Fatal("Stat against a closed port succeeded")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("unreachable endpoint took %s to report", d)
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot reach") || !strings.Contains(msg, "connection refused") {
		t.Errorf("unclear error for an unreachable endpoint: %v", err)
	}
	if strings.Contains(msg, "c2VjcmV0LXNpZw") {
		t.Errorf("error reveals the SAS signature: %v", err)
	}
}

// TestSilentEndpoint: a server that accepts connections and never answers
// is reported once the read timeout and the bounded retries run out.
func TestSilentEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	b := open(t, azure.Config{
		AccountURL: "http://" + l.Addr().String() + "/devstoreaccount1", Account: "devstoreaccount1",
		Container: "c", Key: storage.Secret(testenv.AzuriteKey), ReadTimeout: 300 * time.Millisecond,
	})
	start := time.Now()
	_, err = b.Stat(t.Context(), "k")
	if err == nil {
		t.Fatal("Stat against a silent server succeeded")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("silent endpoint took %s to report", d)
	}
	if !strings.Contains(err.Error(), "did not answer within 300ms") {
		t.Errorf("unclear error for a silent endpoint: %v", err)
	}
}
