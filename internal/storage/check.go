package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// CheckResult is the outcome of one step of Check.
type CheckResult struct {
	Step     string
	Err      error
	Duration time.Duration
}

// Check exercises a bucket the way bcloud uses it, under a fresh unique
// prefix below base, and removes what it wrote: write, read back, ranged
// read, list, conditional put, overwrite refusal, delete. It never touches
// other keys, so it is safe on a user's real bucket.
func Check(ctx context.Context, b Bucket, base string) (results []CheckResult) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	prefix := base + "bcloud-check-" + hex.EncodeToString(rnd[:]) + "/"
	payload := make([]byte, 256<<10)
	_, _ = rand.Read(payload)
	key := prefix + "object"
	step := func(name string, fn func() error) bool {
		start := time.Now()
		err := fn()
		results = append(results, CheckResult{Step: name, Err: err, Duration: time.Since(start)})
		return err == nil
	}
	defer func() {
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		step("delete", func() error {
			if err := b.Delete(cleanCtx, key, prefix+"conditional"); err != nil {
				return err
			}
			if _, err := b.Stat(cleanCtx, key); !errors.Is(err, ErrNotExist) {
				return fmt.Errorf("object still there after delete (stat: %w)", err)
			}
			return nil
		})
	}()
	if !step("write", func() error {
		return b.Put(ctx, key, bytes.NewReader(payload), int64(len(payload)), PutOptions{})
	}) {
		return results
	}
	step("read back", func() error {
		got, err := ReadAll(ctx, b, key)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, payload) {
			return fmt.Errorf("read %d bytes that differ from the %d written", len(got), len(payload))
		}
		return nil
	})
	step("ranged read", func() error {
		rc, err := b.Get(ctx, key, 1000, 100)
		if err != nil {
			return err
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, payload[1000:1100]) {
			return errors.New("ranged read returned the wrong bytes")
		}
		return nil
	})
	step("list", func() error {
		found := false
		err := b.List(ctx, prefix, func(o ObjectInfo) error {
			if o.Key == key && o.Size == int64(len(payload)) {
				found = true
			}
			return nil
		})
		if err == nil && !found {
			err = errors.New("the written object is not listed")
		}
		return err
	})
	step("conditional put", func() error {
		ck := prefix + "conditional"
		if err := b.Put(ctx, ck, bytes.NewReader([]byte("1")), 1, PutOptions{IfNotExist: true}); err != nil {
			return err
		}
		err := b.Put(ctx, ck, bytes.NewReader([]byte("2")), 1, PutOptions{IfNotExist: true})
		if !errors.Is(err, ErrExists) {
			return fmt.Errorf("second conditional put was not refused (got %w): the store ignores If-None-Match, so bcloud cannot detect WAL conflicts atomically", err)
		}
		return nil
	})
	step("missing object", func() error {
		_, err := b.Stat(ctx, prefix+"missing")
		if !errors.Is(err, ErrNotExist) {
			return fmt.Errorf("stat of a missing object returned %w, want not-exist", err)
		}
		return nil
	})
	return results
}
