package storage

import (
	"context"
	"io"
	"strings"
)

// WithPrefix returns a Bucket whose keys are stored under prefix in b.
// Listing and Stat results carry keys relative to prefix. An empty prefix
// returns b unchanged.
func WithPrefix(b Bucket, prefix string) Bucket {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return b
	}
	return &prefixed{b: b, prefix: prefix + "/"}
}

type prefixed struct {
	b      Bucket
	prefix string
}

func (p *prefixed) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error {
	return p.b.Put(ctx, p.prefix+key, r, size, opts)
}

func (p *prefixed) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	return p.b.Get(ctx, p.prefix+key, offset, length)
}

func (p *prefixed) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	info, err := p.b.Stat(ctx, p.prefix+key)
	info.Key = strings.TrimPrefix(info.Key, p.prefix)
	return info, err
}

func (p *prefixed) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	return p.b.List(ctx, p.prefix+prefix, func(info ObjectInfo) error {
		info.Key = strings.TrimPrefix(info.Key, p.prefix)
		return fn(info)
	})
}

func (p *prefixed) Delete(ctx context.Context, keys ...string) error {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = p.prefix + k
	}
	return p.b.Delete(ctx, full...)
}

func (p *prefixed) Properties() Properties { return p.b.Properties() }

func (p *prefixed) Close() error { return p.b.Close() }
