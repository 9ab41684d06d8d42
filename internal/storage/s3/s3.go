// Package s3 is the storage driver for Amazon S3 and S3-compatible stores
// (MinIO, Ceph RGW, versitygw, ...), built on aws-sdk-go-v2.
package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Defaults for Config fields left zero.
const (
	defaultRegion      = "us-east-1"
	defaultPartSize    = 16 << 20
	minPartSize        = 5 << 20 // S3's smallest non-final part
	defaultConcurrency = 4
	defaultMaxAttempts = 5
	maxDeleteBatch     = 1000 // S3's DeleteObjects limit
)

const (
	whenSupported = "when_supported"
	whenRequired  = "when_required"
)

// Bucket is a storage.Bucket on one S3 bucket.
type Bucket struct {
	client   *s3api.Client
	conns    *connSet
	name     string
	endpoint string
	region   string

	sse         types.ServerSideEncryption
	sseKMSKeyID string
	// contentMD5 is set when the SDK adds no checksum of its own
	// (when_required): Put then sends Content-MD5 so the store still
	// verifies every body it receives.
	contentMD5  bool
	partSize    int64
	concurrency int

	bufPool sync.Pool // *[]byte of partSize
	// noBulkDelete is set once the store rejected DeleteObjects.
	noBulkDelete atomic.Bool
}

var _ storage.Bucket = (*Bucket)(nil)

// Open returns a Bucket for cfg. It makes no request: a missing bucket or
// bad credentials show up, with a clear message, on the first call.
func Open(ctx context.Context, cfg Config) (storage.Bucket, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("open s3: no bucket given: use s3://<bucket>/<path>")
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("open s3: endpoint %q is not an http(s) URL: give one such as https://s3.example.com", cfg.Endpoint)
		}
	}
	reqMode, respMode, err := checksumModes(cfg)
	if err != nil {
		return nil, fmt.Errorf("open s3: %w", err)
	}
	readTimeout := cfg.ReadTimeout
	if readTimeout <= 0 {
		readTimeout = defaultReadTimeout
	}
	conns := &connSet{}
	hc, err := newHTTPClient(cfg.CABundle, readTimeout, conns)
	if err != nil {
		return nil, fmt.Errorf("open s3: %w", err)
	}
	attempts := cfg.MaxAttempts
	if attempts <= 0 {
		attempts = defaultMaxAttempts
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(hc),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				// Retries are bounded by attempts and jittered backoff;
				// the SDK's client-wide retry quota would instead stop
				// all retries of a long-running process after an outage.
				o.RateLimiter = ratelimit.None
			})
		}),
		awsconfig.WithRequestChecksumCalculation(reqMode),
		awsconfig.WithResponseChecksumValidation(respMode),
	}
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			cfg.AccessKeyID, cfg.SecretAccessKey.Reveal(), cfg.SessionToken.Reveal())))
	} else if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("open s3: load AWS configuration (profile %q): %w", cfg.Profile, err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultRegion
	}
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = checkedProvider{p: awsCfg.Credentials}
	}
	client := s3api.NewFromConfig(awsCfg, func(o *s3api.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
		// Stores without checksums in their responses are normal here;
		// the SDK must not warn about each one on stderr.
		o.DisableLogOutputChecksumValidationSkipped = true
	})

	partSize := cfg.PartSize
	if partSize <= 0 {
		partSize = defaultPartSize
	}
	partSize = max(partSize, minPartSize)
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = defaultConcurrency
	}
	b := &Bucket{
		client:      client,
		conns:       conns,
		name:        cfg.Bucket,
		endpoint:    cfg.Endpoint,
		region:      awsCfg.Region,
		sse:         types.ServerSideEncryption(cfg.ServerSideEncryption),
		sseKMSKeyID: cfg.SSEKMSKeyID,
		contentMD5:  reqMode == aws.RequestChecksumCalculationWhenRequired,
		partSize:    partSize,
		concurrency: conc,
	}
	b.bufPool.New = func() any {
		buf := make([]byte, b.partSize)
		return &buf
	}
	return b, nil
}

// checksumModes resolves the checksum settings. Left empty, AWS itself
// gets full checksums, while a custom endpoint gets them only where the
// API requires one: many S3-compatible stores reject the newer checksum
// headers and aws-chunked uploads.
func checksumModes(cfg Config) (aws.RequestChecksumCalculation, aws.ResponseChecksumValidation, error) {
	def := whenSupported
	if cfg.Endpoint != "" {
		def = whenRequired
	}
	mode := func(name, v string) (bool, error) {
		if v == "" {
			v = def
		}
		switch strings.ToLower(v) {
		case whenSupported:
			return true, nil
		case whenRequired:
			return false, nil
		}
		return false, fmt.Errorf("%s %q is not valid: use when_supported or when_required", name, v)
	}
	req, err := mode("request checksum calculation", cfg.RequestChecksumCalculation)
	if err != nil {
		return 0, 0, err
	}
	resp, err := mode("response checksum validation", cfg.ResponseChecksumValidation)
	if err != nil {
		return 0, 0, err
	}
	reqMode, respMode := aws.RequestChecksumCalculationWhenRequired, aws.ResponseChecksumValidationWhenRequired
	if req {
		reqMode = aws.RequestChecksumCalculationWhenSupported
	}
	if resp {
		respMode = aws.ResponseChecksumValidationWhenSupported
	}
	return reqMode, respMode, nil
}

// Get returns a reader for a byte range of the object at key.
func (b *Bucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", key, offset)
	}
	if length == 0 {
		if _, err := b.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	in := &s3api.GetObjectInput{Bucket: &b.name, Key: &key}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		if isNotFound(err) {
			return nil, notExist("get "+key, err)
		}
		if code, status := apiCode(err); code == "InvalidRange" || status == 416 {
			// The range starts at or past the end: no bytes exist there.
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, b.wrap(ctx, "get", key, err)
	}
	return &bodyReader{rc: out.Body, key: key}, nil
}

// bodyReader names the object in errors met while reading it.
type bodyReader struct {
	rc  io.ReadCloser
	key string
}

func (r *bodyReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("get %s: read: %w", r.key, err)
	}
	return n, err
}

func (r *bodyReader) Close() error { return r.rc.Close() }

// Stat returns the metadata of the object at key.
func (b *Bucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	out, err := b.client.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &b.name, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return storage.ObjectInfo{}, notExist("stat "+key, err)
		}
		return storage.ObjectInfo{}, b.wrap(ctx, "stat", key, err)
	}
	return storage.ObjectInfo{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    strings.Trim(aws.ToString(out.ETag), `"`),
	}, nil
}

// List calls fn for every object under prefix in S3's (lexical) order.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	in := &s3api.ListObjectsV2Input{Bucket: &b.name}
	if prefix != "" {
		in.Prefix = &prefix
	}
	pages := s3api.NewListObjectsV2Paginator(b.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return b.wrap(ctx, "list", prefix, err)
		}
		for _, o := range page.Contents {
			err := fn(storage.ObjectInfo{
				Key:     aws.ToString(o.Key),
				Size:    aws.ToInt64(o.Size),
				ModTime: aws.ToTime(o.LastModified),
				ETag:    strings.Trim(aws.ToString(o.ETag), `"`),
			})
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes keys with DeleteObjects in batches of 1000, or one by one
// on stores that do not implement the bulk call.
func (b *Bucket) Delete(ctx context.Context, keys ...string) error {
	for len(keys) > 0 {
		n := min(len(keys), maxDeleteBatch)
		if err := b.deleteBatch(ctx, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (b *Bucket) deleteBatch(ctx context.Context, keys []string) error {
	if len(keys) == 1 || b.noBulkDelete.Load() {
		return b.deleteEach(ctx, keys)
	}
	objs := make([]types.ObjectIdentifier, len(keys))
	for i := range keys {
		objs[i] = types.ObjectIdentifier{Key: &keys[i]}
	}
	out, err := b.client.DeleteObjects(ctx, &s3api.DeleteObjectsInput{
		Bucket: &b.name,
		Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	}, withContentMD5)
	if err != nil {
		code, status := apiCode(err)
		switch {
		case code == "NotImplemented" || code == "MissingContentMD5" || code == "InvalidRequest" ||
			code == "MethodNotAllowed" || status == 501:
			b.noBulkDelete.Store(true)
			return b.deleteEach(ctx, keys)
		}
		return b.wrap(ctx, "delete", fmt.Sprintf("%d keys from %s", len(keys), keys[0]), err)
	}
	var failed []string
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		failed = append(failed, fmt.Sprintf("%s (%s: %s)", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
	}
	if len(failed) > 0 {
		return fmt.Errorf("delete: %d of %d keys not deleted, first %s", len(failed), len(keys), failed[0])
	}
	return nil
}

// deleteEach deletes keys one request at a time, a few in parallel.
func (b *Bucket) deleteEach(ctx context.Context, keys []string) error {
	sem := make(chan struct{}, b.concurrency)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := b.client.DeleteObject(ctx, &s3api.DeleteObjectInput{Bucket: &b.name, Key: &key})
			if err != nil && !isNotFound(err) {
				errs[i] = b.wrap(ctx, "delete", key, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// withContentMD5 adds Content-MD5 to a request, which older S3-compatible
// stores demand on DeleteObjects and do not accept the newer checksums for.
func withContentMD5(o *s3api.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("bcloudContentMD5",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				req, ok := in.Request.(*smithyhttp.Request)
				if ok && req.GetStream() != nil && req.IsStreamSeekable() && req.Header.Get("Content-Md5") == "" {
					h := md5.New()
					if _, err := io.Copy(h, req.GetStream()); err != nil {
						return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("hash request body: %w", err)
					}
					if err := req.RewindStream(); err != nil {
						return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("rewind request body: %w", err)
					}
					req.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(h.Sum(nil)))
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
	})
}

// Properties reports what the S3 driver can do.
func (b *Bucket) Properties() storage.Properties {
	return storage.Properties{Name: "s3", ConditionalPut: true, DeleteBatch: maxDeleteBatch}
}

// Close closes the bucket's connections.
func (b *Bucket) Close() error {
	b.conns.closeAll()
	return nil
}
