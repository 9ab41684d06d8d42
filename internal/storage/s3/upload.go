package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

const (
	maxParts = 10000 // S3's limit on parts of one upload
	// partGrowth is how many parts an unknown-size upload sends before it
	// doubles its part size, so that a stream of any practical length
	// (about 1 TB with 16 MiB parts) fits in maxParts.
	partGrowth   = 2000
	abortTimeout = 30 * time.Second
)

// Put stores r under key. Bodies up to PartSize go in one PutObject;
// larger or unknown-size bodies go in a multipart upload that holds at
// most Concurrency part buffers and is aborted on any failure.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts storage.PutOptions) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	r = storage.ContextReader(ctx, r)
	if size >= 0 && size <= b.partSize {
		buf := b.buffer(b.partSize)
		defer b.release(buf)
		body := (*buf)[:size]
		if n, err := io.ReadFull(r, body); err != nil {
			return readError(key, int64(n), size, err)
		}
		return b.putObject(ctx, key, body, opts)
	}
	partSize := b.partSize
	if size > 0 {
		// A known size sets the part size once so that it fits maxParts.
		need := (size + maxParts - 1) / maxParts
		partSize = max(partSize, (need+(1<<20)-1)&^((1<<20)-1))
	}
	first := b.buffer(partSize)
	n, err := io.ReadFull(r, *first)
	switch {
	case size < 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		// An unknown-size body that fits one part.
		err = b.putObject(ctx, key, (*first)[:n], opts)
		b.release(first)
		return err
	case err != nil:
		b.release(first)
		return readError(key, int64(n), size, err)
	}
	return b.multipart(ctx, key, r, size, partSize, first, opts)
}

func readError(key string, n, size int64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("put %s: body ended after %d bytes, expected %d", key, n, size)
	}
	return fmt.Errorf("put %s: read body: %w", key, err)
}

// buffer returns a part buffer of exactly n bytes.
func (b *Bucket) buffer(n int64) *[]byte {
	if n == b.partSize {
		buf := b.bufPool.Get().(*[]byte)
		*buf = (*buf)[:cap(*buf)]
		return buf
	}
	buf := make([]byte, n)
	return &buf
}

func (b *Bucket) release(buf *[]byte) {
	if int64(cap(*buf)) == b.partSize {
		b.bufPool.Put(buf)
	}
}

func (b *Bucket) tagging(opts storage.PutOptions) *string {
	if len(opts.Tags) == 0 {
		return nil
	}
	v := url.Values{}
	for k, val := range opts.Tags {
		v.Set(k, val)
	}
	return aws.String(v.Encode())
}

func contentType(opts storage.PutOptions) *string {
	if opts.ContentType != "" {
		return aws.String(opts.ContentType)
	}
	return aws.String("application/octet-stream")
}

func (b *Bucket) kmsKey() *string {
	if b.sseKMSKeyID == "" {
		return nil
	}
	return aws.String(b.sseKMSKeyID)
}

func md5Base64(p []byte) *string {
	sum := md5.Sum(p)
	return aws.String(base64.StdEncoding.EncodeToString(sum[:]))
}

// putObject stores body in a single request.
func (b *Bucket) putObject(ctx context.Context, key string, body []byte, opts storage.PutOptions) error {
	in := &s3api.PutObjectInput{
		Bucket:               &b.name,
		Key:                  &key,
		Body:                 bytes.NewReader(body),
		ContentLength:        aws.Int64(int64(len(body))),
		ContentType:          contentType(opts),
		ServerSideEncryption: b.sse,
		SSEKMSKeyId:          b.kmsKey(),
		Tagging:              b.tagging(opts),
	}
	if b.contentMD5 {
		in.ContentMD5 = md5Base64(body)
	} else {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
	}
	if opts.IfNotExist {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := b.client.PutObject(ctx, in); err != nil {
		if opts.IfNotExist && isPreconditionFailed(err) {
			return exists("put "+key, err)
		}
		return b.wrap(ctx, "put", key, err)
	}
	return nil
}

// upload is the state of one multipart upload.
type upload struct {
	b        *Bucket
	key      string
	id       *string
	ctx      context.Context
	cancel   context.CancelCauseFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	parts    []types.CompletedPart
	firstErr error
	// free holds the part buffers not in use, or nil tokens for buffers
	// not yet allocated; its capacity is the bound on part buffers.
	free chan *[]byte
}

// multipart sends r as a multipart upload whose first part, full, is in
// first. At most Concurrency buffers exist at once: one being filled while
// the others upload.
func (b *Bucket) multipart(ctx context.Context, key string, r io.Reader, size, partSize int64, first *[]byte, opts storage.PutOptions) error {
	if opts.IfNotExist {
		// Cheap early exit; the atomic check is If-None-Match on Complete.
		if _, err := b.Stat(ctx, key); err == nil {
			b.release(first)
			return exists("put "+key, nil)
		} else if !errors.Is(err, storage.ErrNotExist) {
			b.release(first)
			return err
		}
	}
	in := &s3api.CreateMultipartUploadInput{
		Bucket:               &b.name,
		Key:                  &key,
		ContentType:          contentType(opts),
		ServerSideEncryption: b.sse,
		SSEKMSKeyId:          b.kmsKey(),
		Tagging:              b.tagging(opts),
	}
	if !b.contentMD5 {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
	}
	out, err := b.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		b.release(first)
		return b.wrap(ctx, "put", key, err)
	}
	u := &upload{b: b, key: key, id: out.UploadId}
	u.ctx, u.cancel = context.WithCancelCause(ctx)
	defer u.cancel(nil)

	u.free = make(chan *[]byte, b.concurrency)
	err = u.send(r, size, partSize, first)
	u.wg.Wait()
	for len(u.free) > 0 {
		if buf := <-u.free; buf != nil {
			b.release(buf)
		}
	}
	if err == nil {
		err = u.firstErr
	}
	if err == nil {
		err = u.complete(ctx, opts)
		if err == nil {
			return nil
		}
	}
	if abortErr := u.abort(ctx); abortErr != nil {
		return fmt.Errorf("%w (abort of upload also failed, an incomplete upload may remain: %w)", err, abortErr)
	}
	return err
}

// send reads parts from r and starts their uploads until r ends, size
// bytes are sent, or an upload fails.
func (u *upload) send(r io.Reader, size, partSize int64, first *[]byte) error {
	free := u.free
	for range u.b.concurrency - 1 {
		free <- nil
	}
	buf, n, sent := first, int64(len(*first)), int64(0)
	for num := int32(1); ; num++ {
		u.wg.Add(1)
		go u.uploadPart(num, buf, n, free)
		sent += n
		if size >= 0 && sent == size {
			return nil
		}
		if num == maxParts {
			return fmt.Errorf("put %s: body exceeds %d parts", u.key, maxParts)
		}
		var want int64
		if size < 0 {
			want = partSize << (int(num) / partGrowth)
		} else {
			want = min(partSize, size-sent)
		}
		select {
		case buf = <-free:
		case <-u.ctx.Done():
			return context.Cause(u.ctx)
		}
		if u.ctx.Err() != nil {
			free <- buf
			return context.Cause(u.ctx)
		}
		if buf == nil || int64(cap(*buf)) < want {
			if buf != nil {
				u.b.release(buf)
			}
			buf = u.b.buffer(want)
		}
		*buf = (*buf)[:want]
		m, err := io.ReadFull(r, *buf)
		n = int64(m)
		switch {
		case size < 0 && errors.Is(err, io.EOF):
			u.b.release(buf)
			return nil
		case size < 0 && errors.Is(err, io.ErrUnexpectedEOF):
			u.wg.Add(1)
			go u.uploadPart(num+1, buf, n, free)
			return nil
		case err != nil:
			u.b.release(buf)
			return readError(u.key, sent+n, size, err)
		}
	}
}

// uploadPart sends one part and hands its buffer back through free.
func (u *upload) uploadPart(num int32, buf *[]byte, n int64, free chan<- *[]byte) {
	defer u.wg.Done()
	body := (*buf)[:n]
	in := &s3api.UploadPartInput{
		Bucket:        &u.b.name,
		Key:           &u.key,
		UploadId:      u.id,
		PartNumber:    aws.Int32(num),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(n),
	}
	if u.b.contentMD5 {
		in.ContentMD5 = md5Base64(body)
	} else {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
	}
	out, err := u.b.client.UploadPart(u.ctx, in)
	free <- buf
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		if u.firstErr == nil {
			u.firstErr = u.b.wrap(u.ctx, fmt.Sprintf("put %s: part", u.key), fmt.Sprint(num), err)
			u.cancel(u.firstErr)
		}
		return
	}
	u.parts = append(u.parts, types.CompletedPart{
		PartNumber:     aws.Int32(num),
		ETag:           out.ETag,
		ChecksumCRC32C: out.ChecksumCRC32C,
	})
}

// complete assembles the parts into the object, atomically refusing an
// existing key when opts.IfNotExist is set.
func (u *upload) complete(ctx context.Context, opts storage.PutOptions) error {
	slices.SortFunc(u.parts, func(a, b types.CompletedPart) int {
		return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber))
	})
	in := &s3api.CompleteMultipartUploadInput{
		Bucket:          &u.b.name,
		Key:             &u.key,
		UploadId:        u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
	}
	if opts.IfNotExist {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := u.b.client.CompleteMultipartUpload(ctx, in); err != nil {
		if opts.IfNotExist && isPreconditionFailed(err) {
			return exists("put "+u.key, err)
		}
		return u.b.wrap(ctx, "put", u.key+": complete multipart upload", err)
	}
	return nil
}

// abort removes the upload's parts. It runs even after ctx is cancelled,
// with its own deadline, so a cancelled Put leaves no orphan behind.
func (u *upload) abort(ctx context.Context) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	_, err := u.b.client.AbortMultipartUpload(actx, &s3api.AbortMultipartUploadInput{
		Bucket: &u.b.name, Key: &u.key, UploadId: u.id,
	})
	if err != nil && !isNotFound(err) {
		if code, _ := apiCode(err); code != "NoSuchUpload" {
			return err
		}
	}
	return nil
}
