package gcs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	gstorage "cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// sentinelError carries one of our sentinel errors and the provider error
// that caused it: errors.Is finds the sentinel, errors.As the provider's
// type, and the message is the sentinel's alone.
type sentinelError struct {
	sentinel error
	cause    error
}

func (e *sentinelError) Error() string   { return e.sentinel.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.cause} }

// httpCode returns the HTTP status of a JSON API error, or 0.
func httpCode(err error) int {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}

// isNotFound reports whether err is a 404 from the service.
func isNotFound(err error) bool {
	return errors.Is(err, gstorage.ErrObjectNotExist) || errors.Is(err, gstorage.ErrBucketNotExist) ||
		httpCode(err) == http.StatusNotFound
}

// unreachable reports whether err comes from failing to connect at all
// (refused, unroutable, unknown host), as opposed to an HTTP error.
func unreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// wrap adds the operation and target to err and turns the failures an
// operator must act on (access denied, no such bucket, no connection)
// into one-line messages that say what to fix. A 404 is taken to mean a
// missing bucket: callers handle missing objects before calling wrap.
func (b *Bucket) wrap(op, target string, err error) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("%s gs://%s/%s", op, b.name, target)
	switch code := httpCode(err); {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%s: access denied (HTTP %d): check that the service-account key in "+
			"GOOGLE_APPLICATION_CREDENTIALS, or the workload identity of the pod (gkeEnvironment), "+
			"is valid and has a storage role on bucket %q: %w", where, code, b.name, storage.Permanent(err))
	case isNotFound(err):
		return b.bucketMissing(where, err)
	case unreachable(err):
		return fmt.Errorf("%s: cannot reach Google Cloud Storage at %s: check the network "+
			"and STORAGE_EMULATOR_HOST: %w", where, b.endpoint, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// bucketMissing is the error for a bucket that does not exist. It matches
// the client library's ErrBucketNotExist, never storage.ErrNotExist.
func (b *Bucket) bucketMissing(where string, cause error) error {
	return fmt.Errorf("%s: bucket %q does not exist: create it or correct the destination URL: %w",
		where, b.name, &sentinelError{sentinel: storage.ErrNoBucket, cause: &sentinelError{sentinel: gstorage.ErrBucketNotExist, cause: cause}})
}

// objectMissing resolves a 404 on an object request, which the service
// also returns when the bucket is missing. Until some request has shown
// the bucket to exist, it asks for the bucket once to tell the two apart.
// It returns nil when the bucket exists.
func (b *Bucket) objectMissing(ctx context.Context, where string, cause error) error {
	if b.bucketSeen.Load() {
		return nil
	}
	_, err := b.bucket.Attrs(ctx)
	switch {
	case err == nil:
		b.bucketSeen.Store(true)
	case isNotFound(err):
		return b.bucketMissing(where, cause)
	}
	// Any other answer (say, no permission to read bucket metadata, which
	// object-only roles lack) leaves the object simply missing.
	return nil
}

// notExist is the error for a missing object.
func notExist(where string, cause error) error {
	return fmt.Errorf("%s: %w", where, &sentinelError{sentinel: storage.ErrNotExist, cause: cause})
}
