// Package storage defines the one contract every object-store driver
// implements, and the errors callers test for with errors.Is.
//
// Keys are slash-separated strings with no leading slash. A driver never
// interprets them beyond mapping them onto its own namespace, so the
// Barman Cloud layout (internal/layout) works the same on every provider.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors. Drivers wrap provider errors with these so that callers
// can use errors.Is while errors.As still reaches the provider's own type.
var (
	// ErrNotExist is returned by Get and Stat for a key that has no object.
	ErrNotExist = errors.New("object does not exist")
	// ErrExists is returned by Put with IfNotExist when the key is taken.
	ErrExists = errors.New("object already exists")
	// ErrNoBucket is returned by any call when the bucket or container
	// itself does not exist.
	ErrNoBucket = errors.New("bucket does not exist")
	// ErrPermanent marks a failure that trying again will not cure, such
	// as denied access or a bad credential. Drivers join it to such errors.
	ErrPermanent = errors.New("permanent failure")
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag is the provider's opaque version tag, or "" when it has none.
	ETag string
}

// PutOptions modify a Put.
type PutOptions struct {
	// IfNotExist makes the Put fail with ErrExists when the key already
	// holds an object. The check and the write are one atomic step on
	// providers whose Properties().ConditionalPut is true.
	IfNotExist bool
	// Tags are attached to the object as provider tags (S3 object tags,
	// Azure blob index tags, GCS custom metadata).
	Tags map[string]string
	// ContentType is optional; drivers default to application/octet-stream.
	ContentType string
}

// Properties describe what a driver can do, so that callers and the
// conformance suite can adapt without type switches.
type Properties struct {
	// Name identifies the driver in messages ("s3", "azure", "gcs", "fs", "mem").
	Name string
	// ConditionalPut is true when IfNotExist is enforced atomically by the store.
	ConditionalPut bool
	// DeleteBatch is the largest number of keys one bulk delete may carry;
	// 1 means the driver deletes one key per request.
	DeleteBatch int
}

// Bucket is implemented by every driver. All methods are safe for concurrent
// use and honour ctx cancellation.
type Bucket interface {
	// Put stores the bytes read from r under key. size is the exact length
	// when known, or -1. The object becomes visible only once all bytes
	// are stored: a Put that fails or whose ctx is cancelled leaves the
	// previous object (or no object) in place, never a partial one.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error

	// Get returns a reader for length bytes of the object starting at
	// offset. length < 0 reads to the end. A missing key yields an error
	// matching ErrNotExist. Reading past the end yields the bytes that exist.
	// The caller closes the reader.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)

	// Stat returns the object's metadata, or an error matching ErrNotExist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// List calls fn for every object whose key starts with prefix, in
	// lexical (byte) order of key, from the caller's goroutine. An error
	// returned by fn stops the listing and is returned as is.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error

	// Delete removes the objects at keys. Keys that do not exist are not
	// an error. Drivers use their provider's bulk delete where it has one.
	Delete(ctx context.Context, keys ...string) error

	// Properties reports the driver's capabilities.
	Properties() Properties

	// Close releases the driver's resources.
	Close() error
}

// ReadAll reads a whole object into memory; for small objects such as
// backup.info and annotations.
func ReadAll(ctx context.Context, b Bucket, key string) ([]byte, error) {
	rc, err := b.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return data, nil
}

// ContextReader returns a reader that fails with ctx.Err() once ctx is done,
// so that a copy from a slow or endless source stops on cancellation.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Permanent marks err as one that retrying will not cure: its message is
// unchanged, and it matches ErrPermanent as well as err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (p permanentError) Error() string   { return p.err.Error() }
func (p permanentError) Unwrap() []error { return []error{ErrPermanent, p.err} }
