package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Get implements storage.Bucket. The download resumes by itself after a
// dropped connection (pinned to the blob's ETag), and fails once no byte
// has arrived for the read timeout.
func (b *Bucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("get %s/%s: negative offset %d", b.container, key, offset)
	}
	if length == 0 {
		if _, err := b.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	bc := b.client.NewBlobClient(key)
	dctx, cancel := context.WithCancel(ctx)
	// Count 0 means "to the end"; offset 0 with count 0 sends no Range.
	rng := blob.HTTPRange{Offset: offset, Count: max(length, 0)}
	resp, err := bc.DownloadStream(dctx, &blob.DownloadStreamOptions{Range: rng})
	if err != nil {
		cancel()
		if bloberror.HasCode(err, bloberror.InvalidRange) {
			// The blob exists and offset is at or past its end.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, b.fail("get", key, err)
	}
	body := resp.NewRetryReader(dctx, &blob.RetryReaderOptions{MaxRetries: maxTries - 1})
	return newIdleReader(body, cancel, b.readTimeout, b.what("get", key)), nil
}

// idleReader cancels a download whose Read has waited for data longer than
// timeout. Time the caller spends between reads does not count.
type idleReader struct {
	r       io.ReadCloser
	cancel  context.CancelFunc
	timer   *time.Timer
	timeout time.Duration
	what    string
	fired   atomic.Bool
}

func newIdleReader(r io.ReadCloser, cancel context.CancelFunc, timeout time.Duration, what string) *idleReader {
	ir := &idleReader{r: r, cancel: cancel, timeout: timeout, what: what}
	ir.timer = time.AfterFunc(time.Hour, func() {
		ir.fired.Store(true)
		cancel()
	})
	ir.timer.Stop()
	return ir
}

func (ir *idleReader) Read(p []byte) (int, error) {
	ir.timer.Reset(ir.timeout)
	n, err := ir.r.Read(p)
	ir.timer.Stop()
	if err != nil && !errors.Is(err, io.EOF) && ir.fired.Load() {
		return n, fmt.Errorf("%s: no data received for %s: %w", ir.what, ir.timeout, err)
	}
	return n, err
}

func (ir *idleReader) Close() error {
	ir.timer.Stop()
	err := ir.r.Close()
	ir.cancel()
	return err
}

// Stat implements storage.Bucket.
func (b *Bucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	resp, err := b.client.NewBlobClient(key).GetProperties(ctx, nil)
	if err != nil {
		return storage.ObjectInfo{}, b.fail("stat", key, err)
	}
	info := storage.ObjectInfo{Key: key}
	if resp.ContentLength != nil {
		info.Size = *resp.ContentLength
	}
	if resp.LastModified != nil {
		info.ModTime = *resp.LastModified
	}
	if resp.ETag != nil {
		info.ETag = string(*resp.ETag)
	}
	return info, nil
}

// List implements storage.Bucket. Azure lists blob names in lexical order.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	opts := &container.ListBlobsFlatOptions{}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	pager := b.client.NewListBlobsFlatPager(opts)
	for pager.More() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s/%s: %w", b.container, prefix, err)
		}
		page, err := pager.NextPage(ctx)
		if err != nil {
			return b.fail("list", prefix+"*", err)
		}
		if page.Segment == nil {
			continue
		}
		for _, item := range page.Segment.BlobItems {
			if item == nil || item.Name == nil {
				continue
			}
			info := storage.ObjectInfo{Key: *item.Name}
			if p := item.Properties; p != nil {
				if p.ContentLength != nil {
					info.Size = *p.ContentLength
				}
				if p.LastModified != nil {
					info.ModTime = *p.LastModified
				}
				if p.ETag != nil {
					info.ETag = string(*p.ETag)
				}
			}
			if err := fn(info); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("list %s/%s: %w", b.container, prefix, err)
			}
		}
	}
	return nil
}

// Delete implements storage.Bucket. It sends batches of up to 256 deletes
// (Blob Batch), falling back to one request per key, a few at a time, on
// a service that refuses batches. Blobs that do not exist are skipped;
// snapshots go with their blob.
func (b *Bucket) Delete(ctx context.Context, keys ...string) error {
	total := len(keys)
	var errs []error
	for len(keys) > 0 && b.batch.Load() {
		n := min(len(keys), batchMax)
		err := b.deleteBatch(ctx, keys[:n])
		if errors.Is(err, errBatchUnsupported) {
			b.batch.Store(false)
			break
		}
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				return joinDeleteErrors(b.container, total, errs)
			}
		}
		keys = keys[n:]
	}
	if len(keys) > 0 {
		errs = append(errs, b.deleteEach(ctx, keys)...)
	}
	return joinDeleteErrors(b.container, total, errs)
}

// errBatchUnsupported marks a batch the service refused as a whole in a way
// that per-key deletes may avoid.
var errBatchUnsupported = errors.New("blob batch not supported")

func (b *Bucket) deleteBatch(ctx context.Context, keys []string) error {
	builder, err := b.client.NewBatchBuilder()
	if err != nil {
		return errBatchUnsupported
	}
	include := blob.DeleteSnapshotsOptionTypeInclude
	for _, key := range keys {
		if err := builder.Delete(key, &container.BatchDeleteOptions{DeleteOptions: blob.DeleteOptions{DeleteSnapshots: &include}}); err != nil {
			return errBatchUnsupported
		}
	}
	resp, err := b.client.SubmitBatch(ctx, builder, nil)
	if err != nil {
		var re *azcore.ResponseError
		var ue *url.Error
		switch {
		case ctx.Err() != nil:
		case errors.As(err, &re):
			// A service without Blob Batch (an emulator, a hierarchical
			// namespace account) answers 400, 404, 405 or 501; the rest
			// would fail per key just the same.
			switch {
			case re.StatusCode == http.StatusForbidden, bloberror.Code(re.ErrorCode) == bloberror.ContainerNotFound,
				re.StatusCode >= 500 && re.StatusCode != http.StatusNotImplemented:
			default:
				return errBatchUnsupported
			}
		case errors.As(err, &ue):
		default:
			// The batch response could not be parsed.
			return errBatchUnsupported
		}
		return b.fail("delete objects from", "", err)
	}
	var errs []error
	for i, item := range resp.Responses {
		if item == nil || item.Error == nil || bloberror.HasCode(item.Error, bloberror.BlobNotFound) {
			continue
		}
		key := "?"
		if item.ContentID != nil && *item.ContentID >= 0 && *item.ContentID < len(keys) {
			key = keys[*item.ContentID]
		} else if i < len(keys) {
			key = keys[i]
		}
		errs = append(errs, b.fail("delete", key, item.Error))
	}
	return joinDeleteErrors(b.container, len(keys), errs)
}

// deleteEach deletes keys one request each, deleteConcurrency at a time.
func (b *Bucket) deleteEach(ctx context.Context, keys []string) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, deleteConcurrency)
	for _, key := range keys {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return append(errs, b.fail("delete objects from", "", ctx.Err()))
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := b.deleteOne(ctx, key); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

func joinDeleteErrors(containerName string, n int, errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("delete %d objects in azure container %s: %d errors, the first: %w", n, containerName, len(errs), errs[0])
}

func (b *Bucket) deleteOne(ctx context.Context, key string) error {
	include := blob.DeleteSnapshotsOptionTypeInclude
	_, err := b.client.NewBlobClient(key).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: &include})
	if err == nil || bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil
	}
	return b.fail("delete", key, err)
}
