package cnpgi_test

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudnative-pg/cnpg-i/pkg/identity"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/cnpgitest"
	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/mem"
)

// opener records the configurations Stores opens buckets for.
type opener struct {
	mu     sync.Mutex
	opened []config.Storage
}

func (o *opener) open(_ context.Context, st config.Storage) (storage.Bucket, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.opened = append(o.opened, st)
	return mem.New(), nil
}

func (o *opener) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.opened)
}

func TestStoresRereadSecrets(t *testing.T) {
	ctx := context.Background()
	os := cnpgitest.S3ObjectStore("ns", "store", "s3://bucket/path", "http://127.0.0.1:1", "creds")
	sec := cnpgitest.Secret("ns", "creds", map[string]string{"ACCESS_KEY_ID": "AKIA1", "ACCESS_SECRET_KEY": "first-secret\n"})
	c := cnpgitest.FakeClient(t, os, sec)
	o := &opener{}
	stores := &cnpgi.Stores{Client: c, TTL: 50 * time.Millisecond, CertDir: t.TempDir(), Open: o.open,
		Getenv: func(string) string { return "" }}
	defer stores.Close()

	st, err := stores.Get(ctx, "ns", "store")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Config.WAL.S3.SecretAccessKey.Reveal(); got != "first-secret" {
		t.Fatalf("secret key %q", got)
	}
	stores.Release(st)
	// Unchanged configuration: the same buckets, no new open.
	st2, err := stores.Get(ctx, "ns", "store")
	if err != nil {
		t.Fatal(err)
	}
	if st2 != st || o.count() != 1 {
		t.Fatalf("unchanged store reopened: same=%v opens=%d", st2 == st, o.count())
	}
	// Rotate the secret while st2 is in use.
	sec.Data["ACCESS_SECRET_KEY"] = []byte("second-secret")
	if err := c.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	// Within the TTL the cached read is used.
	if st3, _ := stores.Get(ctx, "ns", "store"); st3 != st {
		t.Fatal("secret re-read before the TTL")
	} else {
		stores.Release(st3)
	}
	time.Sleep(60 * time.Millisecond)
	st4, err := stores.Get(ctx, "ns", "store")
	if err != nil {
		t.Fatal(err)
	}
	if st4 == st || st4.Config.WAL.S3.SecretAccessKey.Reveal() != "second-secret" || o.count() != 2 {
		t.Fatalf("rotation not seen: new=%v opens=%d", st4 != st, o.count())
	}
	stores.Release(st2)
	stores.Release(st4)
}

func TestStoresErrors(t *testing.T) {
	ctx := context.Background()
	os := cnpgitest.S3ObjectStore("ns", "store", "s3://bucket/path", "", "creds")
	sec := cnpgitest.Secret("ns", "creds", map[string]string{"ACCESS_KEY_ID": "AKIA1", "ACCESS_SECRET_KEY": "s3cr3t-value"})
	forbid := interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*corev1.Secret); ok {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, key.Name, errors.New("RBAC: access denied"))
		}
		return c.Get(ctx, key, obj, opts...)
	}}
	o := &opener{}
	forbidden := &cnpgi.Stores{Client: cnpgitest.FakeClientWith(t, forbid, os, sec), Open: o.open}
	_, err := forbidden.Get(ctx, "ns", "store")
	if !errors.Is(err, cnpgi.ErrNoPermission) || status.Code(cnpgi.Status(err)) != codes.FailedPrecondition {
		t.Fatalf("forbidden secret: %v", err)
	}

	plain := &cnpgi.Stores{Client: cnpgitest.FakeClient(t, os), Open: o.open}
	_, err = plain.Get(ctx, "ns", "missing")
	if !errors.Is(err, cnpgi.ErrConfiguration) || !strings.Contains(err.Error(), "ns/missing") {
		t.Fatalf("missing ObjectStore: %v", err)
	}
	_, err = plain.Get(ctx, "ns", "store")
	if !errors.Is(err, cnpgi.ErrConfiguration) || !strings.Contains(err.Error(), "creds") {
		t.Fatalf("missing Secret: %v", err)
	}
	badKey := cnpgitest.Secret("ns", "creds", map[string]string{"ACCESS_KEY_ID": "AKIA1", "WRONG": "s3cr3t-value"})
	_, err = (&cnpgi.Stores{Client: cnpgitest.FakeClient(t, os, badKey), Open: o.open}).Get(ctx, "ns", "store")
	if !errors.Is(err, cnpgi.ErrConfiguration) || !strings.Contains(err.Error(), "ACCESS_SECRET_KEY") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("missing key: %v", err)
	}
	if o.count() != 0 {
		t.Fatalf("buckets opened for broken configurations: %d", o.count())
	}
}

func TestStoresEndpointCAFromMount(t *testing.T) {
	ctx := context.Background()
	os := cnpgitest.S3ObjectStore("ns", "store", "s3://bucket", "https://s3.local", "creds")
	os.Spec.Configuration.EndpointCA = cnpgitest.Ref("ca-secret", "ca.crt")
	sec := cnpgitest.Secret("ns", "creds", map[string]string{"ACCESS_KEY_ID": "a", "ACCESS_SECRET_KEY": "b"})
	dir := t.TempDir()
	ca := cnpgitest.NewKeyPair(t, t.TempDir(), "ca.local", x509.ExtKeyUsageServerAuth)
	if err := osMkdirWrite(filepath.Join(dir, "store", cnpgi.CertificateFile), ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	o := &opener{}
	// The CA Secret is not readable by the sidecar (not in its Role): the
	// projected file must be used.
	st, err := (&cnpgi.Stores{Client: cnpgitest.FakeClient(t, os, sec), CertDir: dir, Open: o.open}).Get(ctx, "ns", "store")
	if err != nil {
		t.Fatal(err)
	}
	if string(st.Config.WAL.S3.CABundle) != string(ca.CertPEM) {
		t.Fatal("CA bundle not read from the projected volume")
	}
}

func osMkdirWrite(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// TestServerMutualTLS serves the operator-side identity over TCP with
// mutual TLS 1.3 and dials it as the operator does.
func TestServerMutualTLS(t *testing.T) {
	dir := t.TempDir()
	server := cnpgitest.NewKeyPair(t, dir, "barman-cloud", x509.ExtKeyUsageServerAuth)
	client := cnpgitest.NewKeyPair(t, dir, "barman-cloud-client", x509.ExtKeyUsageClientAuth)
	srv := &cnpgi.Server{
		Identity: &cnpgi.Identity{Services: []identity.PluginCapability_Service_Type{}},
		Address:  "127.0.0.1:0", ServerCertPath: server.CertFile, ServerKeyPath: server.KeyFile, ClientCertPath: client.CertFile,
	}
	addr := cnpgitest.Serve(t, srv).String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	conn := cnpgitest.DialTLS(t, addr, "barman-cloud", server.CertPEM, client.TLS(t))
	p, err := cnpgitest.Load(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if p.Metadata.GetName() != cnpgi.PluginName || p.Metadata.GetLicense() == "" || p.Metadata.GetDisplayName() == "" {
		t.Fatalf("metadata %+v", p.Metadata)
	}

	// A client certificate the plugin does not trust is refused.
	stranger := cnpgitest.NewKeyPair(t, dir, "stranger", x509.ExtKeyUsageClientAuth)
	if _, err := cnpgitest.Load(ctx, cnpgitest.DialTLS(t, addr, "barman-cloud", server.CertPEM, stranger.TLS(t))); err == nil {
		t.Fatal("untrusted client certificate accepted")
	}
	// Rotation: new files apply to the next handshake, no restart.
	rotated := cnpgitest.NewKeyPair(t, t.TempDir(), "barman-cloud-client", x509.ExtKeyUsageClientAuth)
	if err := os.WriteFile(client.CertFile, rotated.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cnpgitest.Load(ctx, cnpgitest.DialTLS(t, addr, "barman-cloud", server.CertPEM, rotated.TLS(t))); err != nil {
		t.Fatalf("rotated client certificate refused: %v", err)
	}
	if _, err := cnpgitest.Load(ctx, cnpgitest.DialTLS(t, addr, "barman-cloud", server.CertPEM, client.TLS(t))); err == nil {
		t.Fatal("old client certificate still accepted after rotation")
	}
}
