package storage

import (
	"context"
	"time"
)

// UploadAborter is implemented by drivers whose store keeps unfinished
// multipart uploads (S3) until they are aborted. Azure drops uncommitted
// blocks and GCS resumable sessions by itself after a week; their drivers
// do not implement it.
type UploadAborter interface {
	// AbortUploads aborts the unfinished uploads of keys under prefix that
	// were started before startedBefore, and returns how many it aborted.
	AbortUploads(ctx context.Context, prefix string, startedBefore time.Time) (int, error)
}

// AbortUploads aborts b's unfinished uploads under prefix started before
// startedBefore, when b's store has such a thing; otherwise it does nothing.
// Decorators (WithPrefix, retry) forward it.
func AbortUploads(ctx context.Context, b Bucket, prefix string, startedBefore time.Time) (int, error) {
	if a, ok := b.(UploadAborter); ok {
		return a.AbortUploads(ctx, prefix, startedBefore)
	}
	return 0, nil
}

// AbortUploads implements UploadAborter for a prefixed bucket.
func (p *prefixed) AbortUploads(ctx context.Context, prefix string, startedBefore time.Time) (int, error) {
	return AbortUploads(ctx, p.b, p.prefix+prefix, startedBefore)
}
