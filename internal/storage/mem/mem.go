// Package mem is an in-memory storage driver: the fake for domain tests and
// the first gate of the conformance suite.
package mem

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Bucket is an in-memory storage.Bucket. The zero value is not usable; call New.
type Bucket struct {
	mu      sync.RWMutex
	objects map[string]object
	now     func() time.Time
}

type object struct {
	data    []byte
	modTime time.Time
	tags    map[string]string
}

var _ storage.Bucket = (*Bucket)(nil)

// New returns an empty bucket.
func New() *Bucket {
	return &Bucket{objects: map[string]object{}, now: time.Now}
}

// Put implements storage.Bucket.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts storage.PutOptions) error {
	if err := checkKey(key); err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, storage.ContextReader(ctx, r)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 && int64(buf.Len()) != size {
		return fmt.Errorf("put %s: read %d bytes, expected %d", key, buf.Len(), size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.objects[key]; ok && opts.IfNotExist {
		return fmt.Errorf("put %s: %w", key, storage.ErrExists)
	}
	b.objects[key] = object{data: buf.Bytes(), modTime: b.now(), tags: opts.Tags}
	return nil
}

// Get implements storage.Bucket.
func (b *Bucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	o, ok := b.objects[key]
	b.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	data := o.data
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	data = data[offset:]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Stat implements storage.Bucket.
func (b *Bucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, err
	}
	b.mu.RLock()
	o, ok := b.objects[key]
	b.mu.RUnlock()
	if !ok {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
	}
	return info(key, o), nil
}

// List implements storage.Bucket.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	b.mu.RLock()
	var infos []storage.ObjectInfo
	for k, o := range b.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, info(k, o))
		}
	}
	b.mu.RUnlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, in := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements storage.Bucket.
func (b *Bucket) Delete(ctx context.Context, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		delete(b.objects, k)
	}
	return nil
}

// Tags returns the tags stored with key, for tests.
func (b *Bucket) Tags(key string) map[string]string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.objects[key].tags
}

// Properties implements storage.Bucket.
func (b *Bucket) Properties() storage.Properties {
	return storage.Properties{Name: "mem", ConditionalPut: true, DeleteBatch: 1000}
}

// Close implements storage.Bucket.
func (b *Bucket) Close() error { return nil }

func info(key string, o object) storage.ObjectInfo {
	sum := md5.Sum(o.data)
	return storage.ObjectInfo{Key: key, Size: int64(len(o.data)), ModTime: o.modTime, ETag: hex.EncodeToString(sum[:])}
}

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") {
		return fmt.Errorf("invalid object key %q: must be non-empty with no leading slash", key)
	}
	return nil
}
