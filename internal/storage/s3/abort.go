package s3

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

var _ storage.UploadAborter = (*Bucket)(nil)

// AbortUploads aborts the multipart uploads under prefix that were
// initiated before startedBefore: what a killed process left behind, which
// S3 keeps (and bills) until aborted.
func (b *Bucket) AbortUploads(ctx context.Context, prefix string, startedBefore time.Time) (int, error) {
	type upload struct{ key, id string }
	var stale []upload
	in := &s3api.ListMultipartUploadsInput{Bucket: aws.String(b.name), Prefix: aws.String(prefix)}
	for {
		out, err := b.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return 0, b.wrap(ctx, "list multipart uploads", prefix, err)
		}
		for _, u := range out.Uploads {
			if u.Initiated != nil && u.Initiated.Before(startedBefore) {
				stale = append(stale, upload{aws.ToString(u.Key), aws.ToString(u.UploadId)})
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	n := 0
	for _, u := range stale {
		_, err := b.client.AbortMultipartUpload(ctx, &s3api.AbortMultipartUploadInput{
			Bucket: aws.String(b.name), Key: aws.String(u.key), UploadId: aws.String(u.id),
		})
		if err != nil {
			return n, b.wrap(ctx, "abort multipart upload", u.key, err)
		}
		n++
	}
	return n, nil
}
