// Package azure is the Azure Blob Storage driver. It writes block blobs:
// one Put Blob request with a Content-MD5 for small objects, and staged
// blocks committed with one Put Block List for large or unknown-size ones,
// so that an object appears only once it is complete.
package azure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Transfer and retry tuning.
const (
	// blockSize is the size of one staged block; blockConcurrency blocks are
	// buffered and uploaded at once, which bounds a Put's memory.
	blockSize        = 8 << 20
	blockConcurrency = 4
	// singlePutMax is the largest known-size body sent as one Put Blob
	// (a 16 MiB WAL segment goes in one request).
	singlePutMax = 32 << 20
	// maxBlocks and maxBlockSize are Azure's limits for a block blob.
	maxBlocks    = 50000
	maxBlockSize = 4000 << 20

	deleteConcurrency  = 8
	batchMax           = 256
	defaultReadTimeout = 60 * time.Second
	dialTimeout        = 10 * time.Second
	maxTries           = 4
	retryDelay         = 500 * time.Millisecond
	maxRetryDelay      = 8 * time.Second
)

// Bucket is an Azure Blob container opened by Open.
type Bucket struct {
	client    *container.Client
	container string
	account   string
	scope     string
	// authHint names where the credential came from, for 403 messages.
	authHint string
	// tokenAuth is true for an Azure AD credential.
	tokenAuth bool
	// secrets are redacted from any text that reaches an error message.
	secrets     []string
	readTimeout time.Duration
	// batch is cleared once the service refuses a Blob Batch request.
	batch atomic.Bool

	// Tuning, fixed by Open; tests shrink them.
	blockSize    int
	concurrency  int
	singlePutMax int64
	growEvery    int
}

var _ storage.Bucket = (*Bucket)(nil)

// Open returns a bucket for the container in cfg. It makes no request:
// a missing container or a rejected credential is reported by the first
// operation.
func Open(ctx context.Context, cfg Config) (storage.Bucket, error) {
	if cfg.Container == "" {
		return nil, errors.New("open azure container: no container name: use https://<account>.blob.core.windows.net/<container>/<path>")
	}
	if err := checkOneAuth(cfg); err != nil {
		return nil, err
	}
	readTimeout := cfg.ReadTimeout
	if readTimeout <= 0 {
		readTimeout = defaultReadTimeout
	}
	httpClient, err := newHTTPClient(cfg.CABundle, readTimeout)
	if err != nil {
		return nil, err
	}
	b := &Bucket{
		container:    cfg.Container,
		account:      cfg.Account,
		scope:        cfg.EncryptionScope,
		readTimeout:  readTimeout,
		blockSize:    blockSize,
		concurrency:  blockConcurrency,
		singlePutMax: singlePutMax,
		growEvery:    maxBlocks / 4,
	}
	for _, s := range []storage.Secret{cfg.ConnectionString, cfg.Key, cfg.SASToken} {
		if v := strings.TrimPrefix(s.Reveal(), "?"); v != "" {
			b.secrets = append(b.secrets, v)
		}
	}
	opts := &container.ClientOptions{}
	opts.Transport = httpClient
	opts.Retry = policy.RetryOptions{
		MaxRetries:    maxTries - 1,
		RetryDelay:    retryDelay,
		MaxRetryDelay: maxRetryDelay,
		ShouldRetry:   shouldRetry,
	}
	opts.Telemetry.ApplicationID = "bcloud"
	if b.client, b.authHint, err = newContainerClient(cfg, opts); err != nil {
		return nil, err
	}
	b.tokenAuth = cfg.Credential != CredentialNone
	b.batch.Store(true)
	if b.account == "" {
		b.account = accountFromURL(b.client.URL())
	}
	return b, nil
}

func checkOneAuth(cfg Config) error {
	n := 0
	for _, set := range []bool{cfg.ConnectionString != "", cfg.Key != "", cfg.SASToken != "", cfg.Credential != CredentialNone} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("open azure container: no credentials: set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or choose --azure-credential")
	case n > 1:
		return errors.New("open azure container: more than one credential given (connection string, key, SAS token, --azure-credential): keep one")
	}
	return nil
}

func newContainerClient(cfg Config, opts *container.ClientOptions) (*container.Client, string, error) {
	if cfg.ConnectionString != "" {
		c, err := container.NewClientFromConnectionString(cfg.ConnectionString.Reveal(), cfg.Container, opts)
		if err != nil {
			// The parser's message may quote the string; keep it out.
			return nil, "", errors.New("open azure container: AZURE_STORAGE_CONNECTION_STRING is malformed: expect AccountName, AccountKey and BlobEndpoint (or DefaultEndpointsProtocol) pairs separated by semicolons")
		}
		return c, "AZURE_STORAGE_CONNECTION_STRING", nil
	}
	if cfg.AccountURL == "" {
		return nil, "", errors.New("open azure container: no account URL: use https://<account>.blob.core.windows.net/<container>/<path>")
	}
	u, err := url.Parse(cfg.AccountURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, "", fmt.Errorf("open azure container: account URL %q is not an http(s) URL", cfg.AccountURL)
	}
	containerURL := strings.TrimSuffix(cfg.AccountURL, "/") + "/" + url.PathEscape(cfg.Container)
	switch {
	case cfg.Key != "":
		if cfg.Account == "" {
			return nil, "", errors.New("open azure container: a storage key needs the account name: set AZURE_STORAGE_ACCOUNT or use https://<account>.blob.core.windows.net/<container>")
		}
		cred, err := container.NewSharedKeyCredential(cfg.Account, cfg.Key.Reveal())
		if err != nil {
			return nil, "", errors.New("open azure container: AZURE_STORAGE_KEY is not a valid base64 account key")
		}
		c, err := container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
		if err != nil {
			return nil, "", fmt.Errorf("open azure container %s: %w", cfg.Container, err)
		}
		return c, "AZURE_STORAGE_KEY and AZURE_STORAGE_ACCOUNT", nil
	case cfg.SASToken != "":
		token := strings.TrimPrefix(strings.TrimSpace(cfg.SASToken.Reveal()), "?")
		if _, err := url.ParseQuery(token); err != nil {
			return nil, "", errors.New("open azure container: AZURE_STORAGE_SAS_TOKEN is not a query string such as sv=<version>&sig=<signature>")
		}
		c, err := container.NewClientWithNoCredential(containerURL+"?"+token, opts)
		if err != nil {
			return nil, "", errors.New("open azure container: AZURE_STORAGE_SAS_TOKEN does not form a valid URL")
		}
		return c, "AZURE_STORAGE_SAS_TOKEN (expired, or lacking permissions: it needs racwdl)", nil
	}
	cred, err := newTokenCredential(cfg, &opts.ClientOptions)
	if err != nil {
		return nil, "", err
	}
	c, err := container.NewClient(containerURL, cred, opts)
	if err != nil {
		return nil, "", fmt.Errorf("open azure container %s: %w", cfg.Container, err)
	}
	return c, credentialHints[cfg.Credential], nil
}

// credentialHints tell, per Azure AD credential, what to check when a
// token or an operation is refused.
var credentialHints = map[Credential]string{
	CredentialAzureCLI: "the azure-cli credential: run az login, and give the signed-in user the Storage Blob Data Contributor role on the container",
	CredentialManagedIdentity: "the managed-identity credential: the pod's workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE) " +
		"or the host's managed identity, which needs the Storage Blob Data Contributor role on the container",
	CredentialDefault: "the default credential chain (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET, workload identity, managed identity, az login); " +
		"the identity needs the Storage Blob Data Contributor role on the container",
}

// newTokenCredential builds the Azure AD credential named by cfg. Building
// one makes no request; tokens are fetched on first use.
func newTokenCredential(cfg Config, co *azcore.ClientOptions) (azcore.TokenCredential, error) {
	switch cfg.Credential {
	case CredentialAzureCLI:
		cred, err := azidentity.NewAzureCLICredential(nil)
		if err != nil {
			return nil, fmt.Errorf("create azure-cli credential: %w", err)
		}
		return cred, nil
	case CredentialManagedIdentity:
		return managedIdentity(cfg, co)
	case CredentialDefault:
		opts := &azidentity.DefaultAzureCredentialOptions{ClientOptions: *co}
		cred, err := azidentity.NewDefaultAzureCredential(opts)
		if err != nil {
			return nil, fmt.Errorf("create default azure credential: %w", err)
		}
		return cred, nil
	}
	return nil, fmt.Errorf("open azure container: unknown credential %q: use azure-cli, managed-identity or default", cfg.Credential)
}

// managedIdentity chains workload identity, when the pod has its
// environment (AZURE_FEDERATED_TOKEN_FILE and friends, set by the AKS
// webhook), with the host's managed identity.
func managedIdentity(cfg Config, co *azcore.ClientOptions) (azcore.TokenCredential, error) {
	var chain []azcore.TokenCredential
	wiOpts := &azidentity.WorkloadIdentityCredentialOptions{ClientOptions: *co, ClientID: cfg.ClientID}
	if wi, err := azidentity.NewWorkloadIdentityCredential(wiOpts); err == nil {
		chain = append(chain, wi)
	}
	miOpts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: *co}
	if cfg.ClientID != "" {
		miOpts.ID = azidentity.ClientID(cfg.ClientID)
	}
	mi, err := azidentity.NewManagedIdentityCredential(miOpts)
	if err != nil {
		return nil, fmt.Errorf("create managed identity credential: %w", err)
	}
	chain = append(chain, mi)
	if len(chain) == 1 {
		return mi, nil
	}
	cred, err := azidentity.NewChainedTokenCredential(chain, nil)
	if err != nil {
		return nil, fmt.Errorf("create workload/managed identity credential: %w", err)
	}
	return cred, nil
}

// newHTTPClient returns a client whose dials, TLS handshakes and response
// waits are bounded, trusting caPEM in addition to the system roots.
func newHTTPClient(caPEM []byte, readTimeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = dialTimeout
	tr.ResponseHeaderTimeout = readTimeout
	tr.MaxIdleConnsPerHost = 16
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("open azure container: the CA bundle (REQUESTS_CA_BUNDLE) holds no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// shouldRetry retries transport failures other than certificate errors,
// and the statuses Azure documents as transient.
func shouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		return !isCertError(err)
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// accountFromURL guesses the account name from a container URL, for
// messages only.
func accountFromURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if host, _, ok := strings.Cut(u.Hostname(), "."); ok && strings.HasSuffix(u.Hostname(), ".blob.core.windows.net") {
		return host
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) >= 2 {
		return segs[0]
	}
	return ""
}

// Properties implements storage.Bucket.
func (b *Bucket) Properties() storage.Properties {
	n := 1
	if b.batch.Load() {
		n = batchMax
	}
	return storage.Properties{Name: "azure", ConditionalPut: true, DeleteBatch: n}
}

// Close implements storage.Bucket.
func (b *Bucket) Close() error { return nil }
