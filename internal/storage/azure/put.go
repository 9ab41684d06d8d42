package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Put implements storage.Bucket. A known size up to singlePutMax, or an
// unknown-size body that ends within one block, is sent as one Put Blob
// with its MD5; anything larger is staged in blocks and committed at the
// end, so a failed or cancelled Put leaves only uncommitted blocks, which
// are invisible and which Azure discards.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts storage.PutOptions) error {
	if err := ctx.Err(); err != nil {
		return b.fail("put", key, err)
	}
	r = storage.ContextReader(ctx, r)
	bb := b.client.NewBlockBlobClient(key)
	if size >= 0 && size <= b.singlePutMax {
		buf := make([]byte, size)
		if err := readExactly(r, buf); err != nil {
			return fmt.Errorf("put %s/%s: read body: %w", b.container, key, err)
		}
		return b.putSingle(ctx, bb, key, buf, opts)
	}
	first := make([]byte, b.blockSize)
	n, err := io.ReadFull(r, first)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if size >= 0 && int64(n) != size {
			return fmt.Errorf("put %s/%s: read body: got %d bytes, expected %d", b.container, key, n, size)
		}
		return b.putSingle(ctx, bb, key, first[:n], opts)
	case err != nil:
		return fmt.Errorf("put %s/%s: read body: %w", b.container, key, err)
	}
	return b.putBlocks(ctx, bb, key, r, size, first, opts)
}

// readExactly fills buf from r and checks that r then ends.
func readExactly(r io.Reader, buf []byte) error {
	n, err := io.ReadFull(r, buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("got %d bytes, expected %d", n, len(buf))
	}
	if err != nil {
		return err
	}
	var one [1]byte
	m, err := io.ReadFull(r, one[:])
	if m > 0 {
		return fmt.Errorf("body is longer than the %d bytes expected", len(buf))
	}
	if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (b *Bucket) httpHeaders(opts storage.PutOptions) *blob.HTTPHeaders {
	ct := opts.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &blob.HTTPHeaders{BlobContentType: &ct}
}

func (b *Bucket) scopeInfo() *blob.CPKScopeInfo {
	if b.scope == "" {
		return nil
	}
	scope := b.scope
	return &blob.CPKScopeInfo{EncryptionScope: &scope}
}

func ifNotExist(opts storage.PutOptions) *blob.AccessConditions {
	if !opts.IfNotExist {
		return nil
	}
	etag := azcore.ETagAny
	return &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &etag}}
}

func tagsOrNil(tags map[string]string) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	return tags
}

func (b *Bucket) putSingle(ctx context.Context, bb *blockblob.Client, key string, data []byte, opts storage.PutOptions) error {
	sum := md5.Sum(data)
	_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		Tags:                    tagsOrNil(opts.Tags),
		HTTPHeaders:             b.httpHeaders(opts),
		CPKScopeInfo:            b.scopeInfo(),
		AccessConditions:        ifNotExist(opts),
		TransactionalValidation: blob.TransferValidationTypeMD5(sum[:]),
	})
	if err != nil {
		if opts.IfNotExist && isExists(err) {
			return b.exists(key, err)
		}
		return b.fail("put", key, err)
	}
	return nil
}

// block is one block to stage: its index and its bytes, a slice of one of
// the putBlocks buffers.
type block struct {
	idx  int
	data []byte
}

// putBlocks stages the body in blocks, first being the first full block
// already read, with at most b.concurrency block buffers alive, then
// commits the block list.
//
// Blocks are b.blockSize bytes, or larger when a known size needs more than
// maxBlocks of them. For an unknown size the block size doubles every
// b.growEvery blocks, so that 50,000 blocks reach about 1.4 TiB (barman's
// largest archive is 1 TiB) while small bodies keep small buffers.
func (b *Bucket) putBlocks(ctx context.Context, bb *blockblob.Client, key string, r io.Reader, size int64, first []byte, opts storage.PutOptions) error {
	blockLen := func(i int) int {
		if size >= 0 {
			return max(b.blockSize, int((size+maxBlocks-1)/maxBlocks))
		}
		return b.blockSize << min(i/b.growEvery, 3)
	}
	if size > int64(maxBlockSize)*maxBlocks {
		return fmt.Errorf("put %s/%s: %d bytes exceed what one blob can hold", b.container, key, size)
	}
	if opts.IfNotExist {
		// Fail early rather than upload a body that cannot be committed;
		// the commit's own condition still decides a race.
		if _, err := bb.GetProperties(ctx, nil); err == nil {
			return b.exists(key, nil)
		}
	}
	var idPrefix [8]byte
	_, _ = rand.Read(idPrefix[:])
	blockID := func(i int) string {
		// Every ID of a blob must have the same length; the random part
		// keeps concurrent uploads to one key from mixing their blocks.
		return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%06d", hex.EncodeToString(idPrefix[:]), i))
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// free holds the buffers not being staged: first is in use by block 0,
	// the others are allocated on first use.
	free := make(chan []byte, b.concurrency)
	for range b.concurrency - 1 {
		free <- nil
	}
	jobs := make(chan block)
	var wg sync.WaitGroup
	for range b.concurrency {
		wg.Go(func() {
			for j := range jobs {
				if err := b.stage(ctx, bb, key, blockID(j.idx), j.data); err != nil {
					cancel(err)
				}
				free <- j.data[:cap(j.data)]
			}
		})
	}

	var ids []string
	var total int64
	readErr := func() error {
		for i := 0; ; i++ {
			buf, n := first, len(first) // block 0 was read by Put
			var err error
			if i > 0 {
				select {
				case buf = <-free:
				case <-ctx.Done():
					return nil
				}
				if want := blockLen(i); cap(buf) < want {
					buf = make([]byte, want)
				} else {
					buf = buf[:want]
				}
				n, err = io.ReadFull(r, buf)
			}
			if n > 0 {
				if len(ids) == maxBlocks {
					return fmt.Errorf("body exceeds the %d blocks one blob can hold", maxBlocks)
				}
				ids = append(ids, blockID(i))
				total += int64(n)
				select {
				case jobs <- block{idx: i, data: buf[:n]}:
				case <-ctx.Done():
					return nil
				}
			}
			switch {
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
				return nil
			case err != nil:
				return err
			}
		}
	}()
	close(jobs)
	wg.Wait()
	if readErr != nil {
		return fmt.Errorf("put %s/%s: read body: %w", b.container, key, readErr)
	}
	if cause := context.Cause(ctx); cause != nil {
		var oe *opError
		if errors.As(cause, &oe) {
			return cause
		}
		return b.fail("put", key, cause)
	}
	if size >= 0 && total != size {
		return fmt.Errorf("put %s/%s: read body: got %d bytes, expected %d", b.container, key, total, size)
	}
	return b.commit(ctx, bb, key, ids, opts)
}

func (b *Bucket) stage(ctx context.Context, bb *blockblob.Client, key, id string, data []byte) error {
	sum := md5.Sum(data)
	_, err := bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(data)), &blockblob.StageBlockOptions{
		CPKScopeInfo:            b.scopeInfo(),
		TransactionalValidation: blob.TransferValidationTypeMD5(sum[:]),
	})
	if err != nil {
		return b.fail("stage block of", key, err)
	}
	return nil
}

func (b *Bucket) commit(ctx context.Context, bb *blockblob.Client, key string, ids []string, opts storage.PutOptions) error {
	_, err := bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		Tags:             tagsOrNil(opts.Tags),
		HTTPHeaders:      b.httpHeaders(opts),
		CPKScopeInfo:     b.scopeInfo(),
		AccessConditions: ifNotExist(opts),
	})
	if err == nil {
		return nil
	}
	if opts.IfNotExist {
		if isExists(err) {
			return b.exists(key, err)
		}
		// A competing writer that committed first discards our blocks.
		if bloberror.HasCode(err, bloberror.InvalidBlockList) {
			if _, serr := bb.GetProperties(ctx, nil); serr == nil {
				return b.exists(key, err)
			}
		}
	}
	return b.fail("commit blocks of", key, err)
}
