// Package gcs is the Google Cloud Storage driver, built on
// cloud.google.com/go/storage over the JSON API.
//
// Uploads are resumable and chunked, carry a CRC32C of the whole object
// that the service verifies, and are abandoned (never finalised) when the
// source fails or the context is cancelled, so a failed Put leaves no
// object behind. Retries of transient errors are bounded in attempts and
// time.
package gcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	gstorage "cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

const (
	// defaultChunkSize bounds the memory one Put buffers and the bytes sent
	// per upload request.
	defaultChunkSize = 8 << 20
	// minChunkSize is the upload chunk granularity of the service.
	minChunkSize = 256 << 10

	// Retry policy for every request the client sends.
	retryMaxAttempts = 6
	retryMaxDuration = 2 * time.Minute
	// Per-chunk bounds of a resumable upload.
	chunkRetryDeadline   = 2 * time.Minute
	chunkTransferTimeout = 5 * time.Minute

	defaultEndpoint = "https://storage.googleapis.com"
)

// credentialTypes are the key-file types GOOGLE_APPLICATION_CREDENTIALS may
// hold, as google-auth accepts them for barman-cloud.
var credentialTypes = map[string]option.CredentialsType{
	"service_account":                  option.ServiceAccount,
	"authorized_user":                  option.AuthorizedUser,
	"impersonated_service_account":     option.ImpersonatedServiceAccount,
	"external_account":                 option.ExternalAccount,
	"external_account_authorized_user": option.CredentialsType("external_account_authorized_user"),
}

// Open returns a Bucket for cfg.Bucket. It does not contact the service:
// a missing bucket or a credential the service refuses is reported by the
// first call that needs it.
func Open(ctx context.Context, cfg Config) (storage.Bucket, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("open Google Cloud Storage: no bucket name: use gs://<bucket>/<path>")
	}
	if cfg.ChunkSize < 0 {
		return nil, fmt.Errorf("open Google Cloud Storage: negative chunk size %d", cfg.ChunkSize)
	}
	opts, endpoint, err := clientOptions(cfg)
	if err != nil {
		return nil, err
	}
	client, err := gstorage.NewClient(ctx, opts...)
	if err != nil {
		if cfg.EmulatorHost == "" && cfg.CredentialsJSON == "" {
			return nil, fmt.Errorf("create Google Cloud Storage client: no Application Default Credentials: "+
				"set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file or enable workload identity (gkeEnvironment): %w", err)
		}
		return nil, fmt.Errorf("create Google Cloud Storage client: %w", err)
	}
	client.SetRetry(
		gstorage.WithPolicy(gstorage.RetryAlways),
		gstorage.WithMaxAttempts(retryMaxAttempts),
		gstorage.WithMaxRetryDuration(retryMaxDuration),
		gstorage.WithBackoff(gax.Backoff{Initial: 250 * time.Millisecond, Max: 16 * time.Second, Multiplier: 2}),
	)
	chunk := cfg.ChunkSize
	if chunk == 0 {
		chunk = defaultChunkSize
	}
	return &Bucket{
		client:    client,
		bucket:    client.Bucket(cfg.Bucket),
		name:      cfg.Bucket,
		endpoint:  endpoint,
		kmsKey:    cfg.KMSKeyName,
		chunkSize: chunk,
	}, nil
}

// clientOptions builds the client options for cfg and names the endpoint
// for error messages.
func clientOptions(cfg Config) ([]option.ClientOption, string, error) {
	opts := []option.ClientOption{
		// All requests, reads included, use the JSON API: one endpoint to
		// configure, and error bodies that tell a missing bucket apart.
		gstorage.WithJSONReads(),
		// The library would otherwise export its own metrics to Cloud Monitoring.
		gstorage.WithDisabledClientMetrics(),
		option.WithUserAgent("bcloud"),
	}
	if cfg.EmulatorHost != "" {
		endpoint, err := emulatorEndpoint(cfg.EmulatorHost)
		if err != nil {
			return nil, "", err
		}
		// The endpoint is set here rather than left to the library's own
		// reading of STORAGE_EMULATOR_HOST: the driver takes no settings
		// from the environment.
		opts = append(opts, option.WithoutAuthentication(), option.WithEndpoint(endpoint+"/storage/v1/"))
		return opts, endpoint, nil
	}
	if cfg.CredentialsJSON != "" {
		cred, err := credentialsOption(cfg.CredentialsJSON)
		if err != nil {
			return nil, "", err
		}
		opts = append(opts, cred)
	}
	return opts, defaultEndpoint, nil
}

// emulatorEndpoint turns STORAGE_EMULATOR_HOST (host:port or a URL) into
// a base URL without a trailing slash.
func emulatorEndpoint(host string) (string, error) {
	raw := host
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("invalid STORAGE_EMULATOR_HOST %q: use host:port or http://host:port", host)
	}
	return u.Scheme + "://" + u.Host, nil
}

// credentialsOption checks that a key file is JSON of a known credential
// type before the library sees it. Its errors never quote the content.
func credentialsOption(secret storage.Secret) (option.ClientOption, error) {
	data := []byte(secret.Reveal())
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		detail := "not a JSON object"
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			detail = fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
		}
		return nil, fmt.Errorf("read Google Cloud credentials (GOOGLE_APPLICATION_CREDENTIALS): %s; "+
			"expected a service-account key file as downloaded from the Google Cloud console", detail)
	}
	if head.Type == "" {
		return nil, errors.New("read Google Cloud credentials (GOOGLE_APPLICATION_CREDENTIALS): " +
			`the JSON has no "type" field; expected a service-account key file ("type": "service_account")`)
	}
	t, ok := credentialTypes[head.Type]
	if !ok {
		shown := head.Type
		if !plainWord(shown) {
			shown = "(unrecognised)"
		}
		return nil, fmt.Errorf("read Google Cloud credentials (GOOGLE_APPLICATION_CREDENTIALS): "+
			"unsupported credential type %s; use service_account, authorized_user, "+
			"impersonated_service_account or external_account", shown)
	}
	return option.WithAuthCredentialsJSON(t, data), nil
}

// plainWord reports whether s is a short lowercase identifier, safe to quote
// from a credential file in a message.
func plainWord(s string) bool {
	if len(s) == 0 || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}
