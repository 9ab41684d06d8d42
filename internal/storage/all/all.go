// Package all opens a storage.Bucket for any resolved destination: the one
// place that knows every driver.
package all

import (
	"context"
	"fmt"

	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/azure"
	"github.com/bcloud-dev/bcloud/internal/storage/fs"
	"github.com/bcloud-dev/bcloud/internal/storage/gcs"
	"github.com/bcloud-dev/bcloud/internal/storage/retry"
	"github.com/bcloud-dev/bcloud/internal/storage/s3"
)

// Open returns a bucket for st, scoped to st.Prefix, with bounded retries.
func Open(ctx context.Context, st config.Storage) (storage.Bucket, error) {
	var (
		b   storage.Bucket
		err error
	)
	switch st.Provider {
	case config.ProviderFile:
		b, err = fs.Open(st.File)
	case config.ProviderS3:
		b, err = s3.Open(ctx, st.S3)
	case config.ProviderAzure:
		b, err = azure.Open(ctx, st.Azure)
	case config.ProviderGCS:
		b, err = gcs.Open(ctx, st.GCS)
	default:
		return nil, fmt.Errorf("no storage driver for provider %q", st.Provider)
	}
	if err != nil {
		return nil, err
	}
	// Retries wrap the driver's own: they also cover the errors a
	// driver's SDK gives up on, and bound every small call in time.
	return retry.New(storage.WithPrefix(b, st.Prefix), retry.Options{}), nil
}
