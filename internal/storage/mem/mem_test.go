package mem_test

import (
	"testing"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/mem"
	"github.com/bcloud-dev/bcloud/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		New:       func(*testing.T) storage.Bucket { return mem.New() },
		LargeSize: 8 << 20,
	})
}
