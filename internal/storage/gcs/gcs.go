package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	gstorage "cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

const (
	// deleteBatch is how many keys one Delete call removes with parallel
	// requests; barman-cloud deletes 100 objects per batch on GCS.
	deleteBatch = 100
	// deleteWorkers bounds the parallel object deletions of one call.
	deleteWorkers = 8
)

// Bucket is a storage.Bucket on one Google Cloud Storage bucket.
type Bucket struct {
	client    *gstorage.Client
	bucket    *gstorage.BucketHandle
	name      string
	endpoint  string
	kmsKey    string
	chunkSize int
	// bucketSeen is set once a request has shown that the bucket exists.
	bucketSeen atomic.Bool
}

var _ storage.Bucket = (*Bucket)(nil)

// Put implements storage.Bucket. An object of known size below ChunkSize
// goes in one request; any other is a resumable upload in chunks of
// ChunkSize bytes. Either way the object is created only by the last
// request, sent after the source reached EOF with the expected size; on
// any failure the upload's context is cancelled first, so that request is
// never sent.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts storage.PutOptions) error {
	where := "put gs://" + b.name + "/" + key
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	// Object clones the client's retry settings, so this handle's error
	// function is its own.
	retry := &uploadRetry{}
	obj := b.bucket.Object(key).Retryer(gstorage.WithErrorFunc(retry.shouldRetry))
	if opts.IfNotExist {
		obj = obj.If(gstorage.Conditions{DoesNotExist: true})
	}
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := obj.NewWriter(uctx)
	w.ChunkSize = b.uploadChunk(size)
	w.ChunkRetryDeadline = chunkRetryDeadline
	w.ChunkTransferTimeout = chunkTransferTimeout
	w.ProgressFunc = retry.progress
	w.ContentType = opts.ContentType
	if w.ContentType == "" {
		w.ContentType = "application/octet-stream"
	}
	if len(opts.Tags) > 0 {
		// barman-cloud stores tags as custom metadata on GCS.
		w.Metadata = make(map[string]string, len(opts.Tags))
		for k, v := range opts.Tags {
			w.Metadata[k] = v
		}
	}
	w.KMSKeyName = b.kmsKey
	// The library computes the CRC32C of the whole object while it
	// buffers chunks and sends it with the final request, where the
	// service rejects the upload if the stored bytes differ.

	n, err := io.Copy(w, storage.ContextReader(ctx, r))
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("read %d bytes, expected %d", n, size)
	}
	if err != nil {
		// Cancel before Close: with the context gone, the library can no
		// longer send the request that would finalise a partial object.
		cancel()
		_ = w.Close()
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return fmt.Errorf("%s: %w", where, cerr)
		}
		return b.wrap("put", key, err)
	}
	if err := w.Close(); err != nil {
		if opts.IfNotExist && httpCode(err) == http.StatusPreconditionFailed {
			return fmt.Errorf("%s: %w", where, &sentinelError{sentinel: storage.ErrExists, cause: err})
		}
		return b.wrap("put", key, err)
	}
	b.bucketSeen.Store(true)
	return nil
}

// uploadRetry bounds the retries of one upload. The library retries the
// request that starts an upload (or sends a small object whole) until the
// context ends; here a request that failed retryMaxAttempts times in a
// row fails the Put. A successful request resets the count, so a long
// upload may still ride out many unrelated transient errors.
type uploadRetry struct{ failures atomic.Int32 }

// shouldRetry is the upload's retry predicate. The library also calls it
// with a nil error after each successful request.
func (u *uploadRetry) shouldRetry(err error) bool {
	if err == nil {
		u.failures.Store(0)
		return false
	}
	if !gstorage.ShouldRetry(err) {
		return false
	}
	return u.failures.Add(1) < retryMaxAttempts
}

// progress is called after each chunk the service has stored.
func (u *uploadRetry) progress(int64) { u.failures.Store(0) }

// uploadChunk picks the upload chunk size: an object of known size that
// fits in one chunk gets a buffer just big enough to hold it and see EOF,
// which also makes the library send it in a single request.
func (b *Bucket) uploadChunk(size int64) int {
	if size < 0 || size >= int64(b.chunkSize) {
		return b.chunkSize
	}
	need := int((size/minChunkSize + 1) * minChunkSize)
	return min(need, b.chunkSize)
}

// Get implements storage.Bucket.
func (b *Bucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("get gs://%s/%s: negative offset %d", b.name, key, offset)
	}
	if length < 0 {
		length = -1
	}
	if length == 0 {
		// The library reads a zero length as "nothing", but still wants
		// the object to exist.
		if _, err := b.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(eofReader{}), nil
	}
	rc, err := b.bucket.Object(key).NewRangeReader(ctx, offset, length)
	if err != nil {
		where := "get gs://" + b.name + "/" + key
		if httpCode(err) == http.StatusRequestedRangeNotSatisfiable {
			// An offset at or past the end of the object reads nothing.
			return io.NopCloser(eofReader{}), nil
		}
		if isNotFound(err) {
			if berr := b.objectMissing(ctx, where, err); berr != nil {
				return nil, berr
			}
			return nil, notExist(where, err)
		}
		return nil, b.wrap("get", key, err)
	}
	b.bucketSeen.Store(true)
	return &objectReader{r: rc, where: "read gs://" + b.name + "/" + key}, nil
}

// objectReader adds the object's name to read errors.
type objectReader struct {
	r     *gstorage.Reader
	where string
}

func (o *objectReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s: %w", o.where, err)
	}
	return n, err
}

func (o *objectReader) Close() error { return o.r.Close() }

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// Stat implements storage.Bucket.
func (b *Bucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	attrs, err := b.bucket.Object(key).Attrs(ctx)
	if err != nil {
		where := "stat gs://" + b.name + "/" + key
		if isNotFound(err) {
			if berr := b.objectMissing(ctx, where, err); berr != nil {
				return storage.ObjectInfo{}, berr
			}
			return storage.ObjectInfo{}, notExist(where, err)
		}
		return storage.ObjectInfo{}, b.wrap("stat", key, err)
	}
	b.bucketSeen.Store(true)
	return info(attrs), nil
}

func info(a *gstorage.ObjectAttrs) storage.ObjectInfo {
	return storage.ObjectInfo{Key: a.Name, Size: a.Size, ModTime: a.Updated, ETag: a.Etag}
}

// List implements storage.Bucket. The service lists names in lexical
// (UTF-8 byte) order.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	q := &gstorage.Query{Prefix: prefix, Projection: gstorage.ProjectionNoACL}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated", "Etag"}); err != nil {
		return fmt.Errorf("list gs://%s/%s: %w", b.name, prefix, err)
	}
	it := b.bucket.Objects(ctx, q)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list gs://%s/%s: %w", b.name, prefix, err)
		}
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			b.bucketSeen.Store(true)
			return nil
		}
		if err != nil {
			return b.wrap("list", prefix, err)
		}
		b.bucketSeen.Store(true)
		if err := fn(info(attrs)); err != nil {
			return err
		}
	}
}

// Delete implements storage.Bucket. Objects are removed one request each,
// up to deleteWorkers at a time; missing keys are skipped.
func (b *Bucket) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if len(keys) == 1 {
		return b.deleteOne(ctx, keys[0])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		next     = make(chan string)
	)
	for range min(deleteWorkers, len(keys)) {
		wg.Go(func() {
			for key := range next {
				if err := b.deleteOne(ctx, key); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
feed:
	for _, key := range keys {
		select {
		case next <- key:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete from gs://%s: %w", b.name, err)
	}
	return nil
}

func (b *Bucket) deleteOne(ctx context.Context, key string) error {
	err := b.bucket.Object(key).Delete(ctx)
	if err == nil {
		b.bucketSeen.Store(true)
		return nil
	}
	if isNotFound(err) {
		return b.objectMissing(ctx, "delete gs://"+b.name+"/"+key, err)
	}
	return b.wrap("delete", key, err)
}

// Properties implements storage.Bucket.
func (b *Bucket) Properties() storage.Properties {
	return storage.Properties{Name: "gcs", ConditionalPut: true, DeleteBatch: deleteBatch}
}

// Close implements storage.Bucket.
func (b *Bucket) Close() error {
	if err := b.client.Close(); err != nil {
		return fmt.Errorf("close Google Cloud Storage client: %w", err)
	}
	return nil
}
