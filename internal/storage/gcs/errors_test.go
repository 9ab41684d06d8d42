package gcs_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gstorage "cloud.google.com/go/storage"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/gcs"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func TestCredentialsNotJSON(t *testing.T) {
	const secret = "s3cr3t-value-that-must-not-leak"
	for _, raw := range []string{secret, "{" + secret, `["` + secret + `"]`, `{"private_key": "` + secret + `"}`, `{"type": "` + secret + `"}`} {
		_, err := gcs.Open(t.Context(), gcs.Config{Bucket: "b", CredentialsJSON: storage.Secret(raw)})
		if err == nil {
			t.Fatalf("Open with credentials %d bytes long succeeded", len(raw))
		}
		msg := err.Error()
		if strings.Contains(msg, secret) || strings.Contains(msg, "s3cr") {
			t.Fatalf("error echoes the credentials: %v", err)
		}
		if !strings.Contains(msg, "GOOGLE_APPLICATION_CREDENTIALS") {
			t.Errorf("error does not name GOOGLE_APPLICATION_CREDENTIALS: %v", err)
		}
	}
}

// fakeServiceAccount returns a syntactically valid service-account key
// with a fresh RSA key; it grants nothing anywhere.
func fakeServiceAccount(t *testing.T) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "bcloud-test",
		"private_key_id": "0123456789abcdef",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "bcloud@bcloud-test.iam.gserviceaccount.com",
		"client_id":      "123456789",
		// Never contacted: Open fetches no token.
		"token_uri": "http://127.0.0.1:1/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestServiceAccountClient builds a client from a key file. Open sends
// nothing over the network, so the test never reaches Google.
func TestServiceAccountClient(t *testing.T) {
	start := time.Now()
	b, err := gcs.Open(t.Context(), gcs.Config{Bucket: "bucket", CredentialsJSON: storage.Secret(fakeServiceAccount(t))})
	if err != nil {
		t.Fatalf("Open with a service-account key: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open took %s", d)
	}
}

// TestEmulatorNeedsNoCredentials uses both STORAGE_EMULATOR_HOST forms,
// and ignores a credential that would be rejected outside emulator mode.
func TestEmulatorNeedsNoCredentials(t *testing.T) {
	srv := testenv.FakeGCS(t)
	bucket := srv.NewBucket(t)
	for _, host := range []string{srv.Host, "http://" + srv.Host, "http://" + srv.Host + "/"} {
		b := open(t, gcs.Config{Bucket: bucket, EmulatorHost: host, CredentialsJSON: "not json"})
		if err := b.Put(t.Context(), "k", strings.NewReader(host), int64(len(host)), storage.PutOptions{}); err != nil {
			t.Fatalf("emulator %s: %v", host, err)
		}
		if got, err := storage.ReadAll(t.Context(), b, "k"); err != nil || string(got) != host {
			t.Fatalf("emulator %s: read %q, %v", host, got, err)
		}
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, cfg := range []gcs.Config{
		{},
		{Bucket: "b", EmulatorHost: "ftp://x:1"},
		{Bucket: "b", EmulatorHost: "http://"},
		{Bucket: "b", EmulatorHost: "127.0.0.1:1", ChunkSize: -1},
	} {
		if _, err := gcs.Open(t.Context(), cfg); err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

// TestMissingBucket checks every operation names the bucket and the fix,
// and that a missing bucket never passes for a missing object.
func TestMissingBucket(t *testing.T) {
	srv := testenv.FakeGCS(t)
	b := open(t, gcs.Config{Bucket: "no-such-bucket-bcloud", EmulatorHost: srv.Host})
	ctx := t.Context()
	check := func(op string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s on a missing bucket succeeded", op)
		}
		msg := err.Error()
		if !strings.Contains(msg, `bucket "no-such-bucket-bcloud" does not exist`) || !strings.Contains(msg, "create it") ||
			strings.Contains(msg, "\n") {
			t.Errorf("%s: unclear error: %v", op, err)
		}
		if errors.Is(err, storage.ErrNotExist) || !errors.Is(err, gstorage.ErrBucketNotExist) {
			t.Errorf("%s: error %v matches ErrNotExist or not ErrBucketNotExist", op, err)
		}
	}
	check("Put", b.Put(ctx, "k", strings.NewReader("x"), 1, storage.PutOptions{}))
	check("Put large", b.Put(ctx, "k", strings.NewReader(strings.Repeat("x", 9<<20)), -1, storage.PutOptions{}))
	_, err := b.Get(ctx, "k", 0, -1)
	check("Get", err)
	_, err = b.Stat(ctx, "k")
	check("Stat", err)
	check("List", b.List(ctx, "", func(storage.ObjectInfo) error { return nil }))
	check("Delete", b.Delete(ctx, "k"))
	check("Delete many", b.Delete(ctx, "k1", "k2", "k3"))
}

// TestUnreachableEndpoint checks a dead endpoint gives a clear error in
// bounded time despite retries.
func TestUnreachableEndpoint(t *testing.T) {
	host := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	b := open(t, gcs.Config{Bucket: "b", EmulatorHost: host})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := b.Stat(ctx, "k")
	if err == nil {
		t.Fatal("Stat on a closed port succeeded")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("Stat took %s", d)
	}
	if !strings.Contains(err.Error(), "cannot reach Google Cloud Storage at http://"+host) {
		t.Fatalf("unclear error: %v", err)
	}
	err = b.Put(ctx, "k", strings.NewReader("x"), 1, storage.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("Put on a closed port: %v", err)
	}
	t.Logf("after %s: %v", time.Since(start), err)
}

// TestAccessDenied answers 403 the way the JSON API does.
func TestAccessDenied(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":{"code":403,"message":"sa@p.iam.gserviceaccount.com does not have storage.objects.get access to the Google Cloud Storage object.","errors":[{"reason":"forbidden"}]}}`))
	}))
	defer srv.Close()
	b := open(t, gcs.Config{Bucket: "locked", EmulatorHost: srv.URL})
	ctx := t.Context()
	_, errStat := b.Stat(ctx, "k")
	_, errGet := b.Get(ctx, "k", 0, -1)
	errs := map[string]error{
		"Stat":   errStat,
		"Get":    errGet,
		"Put":    b.Put(ctx, "k", strings.NewReader("x"), 1, storage.PutOptions{}),
		"List":   b.List(ctx, "", func(storage.ObjectInfo) error { return nil }),
		"Delete": b.Delete(ctx, "k"),
	}
	for op, err := range errs {
		if err == nil {
			t.Errorf("%s succeeded against a 403", op)
			continue
		}
		msg := err.Error()
		for _, want := range []string{"access denied", "GOOGLE_APPLICATION_CREDENTIALS", "gkeEnvironment", `"locked"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error lacks %q: %v", op, want, err)
			}
		}
	}
}
