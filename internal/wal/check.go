package wal

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"

	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// ErrArchiveNotEmpty is returned by CheckEmpty when the archive holds WAL
// files that a new server would collide with.
var ErrArchiveNotEmpty = errors.New("WAL archive is not empty")

// CheckEmpty implements barman-cloud-check-wal-archive: with timeline 0
// any WAL file in the server's archive fails the check; otherwise only
// files of that timeline or newer do.
func CheckEmpty(ctx context.Context, b storage.Bucket, server string, timeline uint32) error {
	var count int
	var first string
	err := b.List(ctx, layout.WALDir(server), func(o storage.ObjectInfo) error {
		_, base := compress.FromWALName(path.Base(o.Key))
		if !layout.IsWALFile(base) {
			return nil
		}
		if timeline > 0 {
			tli, err := strconv.ParseUint(base[:8], 16, 32)
			if err != nil || uint32(tli) < timeline {
				return nil
			}
		}
		if count == 0 {
			first = base
		}
		count++
		return nil
	})
	if err != nil {
		return fmt.Errorf("list WAL archive: %w", err)
	}
	if count == 0 {
		return nil
	}
	if timeline > 0 {
		return fmt.Errorf("found %d file(s) in WAL archive equal to or newer than timeline %d (first: %s): %w", count, timeline, first, ErrArchiveNotEmpty)
	}
	return fmt.Errorf("expected empty archive, found %d WAL file(s) (first: %s): %w", count, first, ErrArchiveNotEmpty)
}
