package s3_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/s3"
	"github.com/bcloud-dev/bcloud/internal/storage/storagetest"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// roundTrip puts, reads back and deletes one object.
func roundTrip(t *testing.T, b storage.Bucket) {
	t.Helper()
	if err := b.Put(t.Context(), "rt/obj", strings.NewReader("hello"), 5, storage.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := storage.ReadAll(t.Context(), b, "rt/obj")
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}
	if err := b.Delete(t.Context(), "rt/obj"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

// isolateAWSEnv keeps the tester's AWS settings out of a default-chain
// test and keeps the SDK from probing the EC2 metadata service.
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func TestTLSWithCA(t *testing.T) {
	srv := testenv.VersityGWTLS(t)
	if !strings.HasPrefix(srv.Endpoint, "https://") {
		t.Fatalf("endpoint %s is not https", srv.Endpoint)
	}
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Bucket {
			return open(t, config(srv, srv.NewBucket(t)))
		},
		LargeSize: 20 << 20,
	})
}

func TestTLSWithoutCA(t *testing.T) {
	srv := testenv.VersityGWTLS(t)
	cfg := config(srv, srv.NewBucket(t))
	cfg.CABundle = nil
	b := open(t, cfg)
	start := time.Now()
	err := b.Put(t.Context(), "k", strings.NewReader("x"), 1, storage.PutOptions{})
	if err == nil {
		t.Fatal("Put to an endpoint with an untrusted certificate succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"certificate", "AWS_CA_BUNDLE", "endpointCA", srv.Endpoint} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("certificate failure took %s: it must not be retried", d)
	}
	t.Logf("error: %v", err)
}

func TestBadCABundle(t *testing.T) {
	cfg := s3.Config{Bucket: "b", Endpoint: "https://127.0.0.1:1", CABundle: []byte("not a pem")}
	if _, err := s3.Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "PEM") {
		t.Fatalf("Open with a bad CA bundle = %v", err)
	}
}

// TestStaticKeysWithSessionToken checks that a session token is sent and
// signed. versitygw refuses any token on its root keys (it mints sessions
// only through its own STS), so the request cannot succeed there; the
// refusal must read as a credentials problem.
func TestStaticKeysWithSessionToken(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	p := newProxy(t, srv.Endpoint, nil)
	cfg := config(srv, bucket)
	cfg.Endpoint = p.URL
	cfg.SessionToken = "session-token-value"
	err := open(t, cfg).Put(t.Context(), "k", strings.NewReader("x"), 1, storage.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), "AWS_SESSION_TOKEN") || strings.Contains(err.Error(), "session-token-value") {
		t.Fatalf("Put with a token versitygw refuses = %v", err)
	}
	t.Logf("error: %v", err)
	reqs := p.requests(func(request) bool { return true })
	if len(reqs) == 0 {
		t.Fatal("no request reached the server")
	}
	for _, r := range reqs {
		if r.Header.Get("X-Amz-Security-Token") != "session-token-value" {
			t.Fatalf("%s request without the session token header", r.Method)
		}
		if !strings.Contains(r.Header.Get("Authorization"), "x-amz-security-token") {
			t.Fatalf("session token not among the signed headers: %s", r.Header.Get("Authorization"))
		}
	}
}

func TestWrongSecret(t *testing.T) {
	srv := testenv.VersityGW(t)
	cfg := config(srv, srv.NewBucket(t))
	cfg.SecretAccessKey = "wrong-secret-value"
	b := open(t, cfg)
	check := func(op string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s with a wrong secret succeeded", op)
		}
		msg := err.Error()
		if !strings.Contains(msg, "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") {
			t.Errorf("%s error %q does not point at the credentials", op, msg)
		}
		if strings.Contains(msg, "wrong-secret-value") || strings.Contains(msg, srv.Secret) {
			t.Errorf("%s error reveals a secret: %q", op, msg)
		}
		t.Logf("%s: %v", op, err)
	}
	check("put", b.Put(t.Context(), "k", strings.NewReader("x"), 1, storage.PutOptions{}))
	_, err := b.Stat(t.Context(), "k")
	check("stat", err)
	check("list", b.List(t.Context(), "", func(storage.ObjectInfo) error { return nil }))
}

func TestDefaultChainFromEnv(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.Secret)
	cfg := s3.Config{Bucket: bucket, Endpoint: srv.Endpoint}
	roundTrip(t, open(t, cfg))
}

func TestDefaultChainFromProfile(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	isolateAWSEnv(t)
	creds := fmt.Sprintf("[backup]\naws_access_key_id = %s\naws_secret_access_key = %s\n", srv.AccessKey, srv.Secret)
	if err := os.WriteFile(os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, open(t, s3.Config{Bucket: bucket, Endpoint: srv.Endpoint, Profile: "backup"}))

	_, err := s3.Open(t.Context(), s3.Config{Bucket: bucket, Endpoint: srv.Endpoint, Profile: "missing"})
	if err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("Open with an unknown profile = %v", err)
	}
}

func TestDefaultChainWithoutCredentials(t *testing.T) {
	srv := testenv.VersityGW(t)
	isolateAWSEnv(t)
	b := open(t, s3.Config{Bucket: srv.NewBucket(t), Endpoint: srv.Endpoint})
	err := b.Put(t.Context(), "k", strings.NewReader("x"), 1, storage.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), "no usable AWS credentials") {
		t.Fatalf("Put without any credentials = %v", err)
	}
	t.Logf("error: %v", err)
}

// fakeSTS answers AssumeRoleWithWebIdentity with the given keys when the
// request carries the expected role and token.
func fakeSTS(t *testing.T, roleARN, token, keyID, secret, sessionToken string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Form.Get("Action") != "AssumeRoleWithWebIdentity" || r.Form.Get("RoleArn") != roleARN ||
			r.Form.Get("WebIdentityToken") != token {
			t.Errorf("unexpected STS request: %v", r.Form)
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>bad request</Message></Error><RequestId>x</RequestId></ErrorResponse>`))
			return
		}
		calls.Add(1)
		exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		w.Header().Set("Content-Type", "text/xml")
		_, _ = fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult>
<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>
<AssumedRoleUser><Arn>%s/session</Arn><AssumedRoleId>AROA:session</AssumedRoleId></AssumedRoleUser>
</AssumeRoleWithWebIdentityResult>
<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, keyID, secret, sessionToken, exp, roleARN)
	}))
	t.Cleanup(s.Close)
	return s, &calls
}

// TestWebIdentity is inheritFromIAMRole on EKS (IRSA): no keys in the
// config, AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE in the environment,
// and STS trading the token for keys. The stand-in STS hands out
// versitygw's keys; it leaves the session token empty because versitygw
// refuses tokens on those keys (TestStaticKeysWithSessionToken).
func TestWebIdentity(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	isolateAWSEnv(t)
	const role = "arn:aws:iam::123456789012:role/backup"
	const token = "eyJhbGciOiJSUzI1NiJ9.test-web-identity-token"
	sts, calls := fakeSTS(t, role, token, srv.AccessKey, srv.Secret, "")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ROLE_ARN", role)
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ROLE_SESSION_NAME", "bcloud-test")
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)

	b := open(t, s3.Config{Bucket: bucket, Endpoint: srv.Endpoint})
	roundTrip(t, b)
	if got := keys(t, b); len(got) != 0 {
		t.Fatalf("List after round trip = %v", got)
	}
	if calls.Load() == 0 {
		t.Fatal("the driver authenticated without asking STS")
	}
}

// TestWebIdentitySessionTokenUsed checks that the session token STS returns
// signs the S3 requests.
func TestWebIdentitySessionTokenUsed(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	isolateAWSEnv(t)
	const role = "arn:aws:iam::123456789012:role/backup"
	sts, _ := fakeSTS(t, role, "tok", srv.AccessKey, srv.Secret, "sts-session-token")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ROLE_ARN", role)
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	p := newProxy(t, srv.Endpoint, nil)
	_, _ = open(t, s3.Config{Bucket: bucket, Endpoint: p.URL}).Stat(t.Context(), "k")
	reqs := p.requests(func(request) bool { return true })
	if len(reqs) == 0 || reqs[0].Header.Get("X-Amz-Security-Token") != "sts-session-token" {
		t.Fatalf("S3 request not signed with the STS session: %v", reqs)
	}
}

// keys lists every key in b.
func keys(t *testing.T, b storage.Bucket) []string {
	t.Helper()
	var out []string
	if err := b.List(t.Context(), "", func(o storage.ObjectInfo) error { out = append(out, o.Key); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	return out
}

func TestWebIdentityRejected(t *testing.T) {
	srv := testenv.VersityGW(t)
	isolateAWSEnv(t)
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>token rejected</Message></Error><RequestId>x</RequestId></ErrorResponse>`))
	}))
	t.Cleanup(sts.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("secret-token-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/backup")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	b := open(t, s3.Config{Bucket: srv.NewBucket(t), Endpoint: srv.Endpoint})
	_, err := b.Stat(t.Context(), "k")
	if err == nil || errors.Is(err, storage.ErrNotExist) || !strings.Contains(err.Error(), "no usable AWS credentials") ||
		!strings.Contains(err.Error(), "InvalidIdentityToken") {
		t.Fatalf("Stat with a rejected web identity = %v", err)
	}
	if strings.Contains(err.Error(), "secret-token-value") {
		t.Fatalf("error reveals the token: %v", err)
	}
	t.Logf("error: %v", err)
}
