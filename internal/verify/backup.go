package verify

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// checkBackup reads every archive of a backup to its end.
func (r *run) checkBackup(ctx context.Context, e catalog.Entry) BackupResult {
	res := BackupResult{ID: e.ID, Status: e.Info.StatusValue()}
	before := len(r.rep.Problems)
	if res.Status != catalog.StatusDone {
		r.problem("unreadable", layout.BackupInfoKey(r.opts.Server, e.ID), "backup status is %s, not DONE", res.Status)
	}
	if e.Info.IsSnapshot() {
		res.OK = len(r.rep.Problems) == before
		return res // snapshot backups have no archives to read
	}
	dir := layout.BackupDir(r.opts.Server, e.ID)
	archives := map[string][]string{} // "data" or oid -> keys
	err := r.opts.Bucket.List(ctx, dir, func(o storage.ObjectInfo) error {
		name := strings.TrimPrefix(o.Key, dir)
		if strings.Contains(name, "/") {
			return nil
		}
		if _, ok := compress.FromTarName(name); !ok {
			return nil
		}
		base := name[:strings.Index(name, ".tar")]
		if i := strings.LastIndex(base, "_"); i > 0 {
			base = base[:i]
		}
		archives[base] = append(archives[base], o.Key)
		return nil
	})
	if err != nil {
		r.problem("unreadable", dir, "list archives: %v", err)
		return res
	}
	want := []string{"data"}
	for _, ts := range e.Info.Tablespaces {
		want = append(want, strconv.Itoa(ts.OID))
	}
	for _, name := range want {
		if len(archives[name]) == 0 {
			r.problem("missing", dir+name+".tar", "archive %q of backup %s is missing", name, e.ID)
		}
	}
	var keys []string
	for _, ks := range archives {
		keys = append(keys, ks...)
	}
	sort.Strings(keys)
	res.Archives = len(keys)
	seen := map[string]bool{}
	var mu sync.Mutex
	r.parallel(ctx, keys, func(key string) {
		members, n, names, err := readTar(ctx, r.opts.Bucket, key)
		mu.Lock()
		res.Members += members
		res.Bytes += n
		for _, nm := range names {
			seen[nm] = true
		}
		mu.Unlock()
		if err != nil {
			r.problem("corrupt", key, "%v", err)
		}
	})
	if len(archives["data"]) > 0 {
		for _, must := range []string{"global/pg_control", "backup_label", "PG_VERSION"} {
			if !seen[must] {
				r.problem("missing", dir+"data.tar", "the data archive has no %s: the backup cannot start", must)
			}
		}
	}
	res.OK = len(r.rep.Problems) == before
	return res
}

// readTar reads a compressed tar object to its end, counting members and
// bytes, and returns the names of the top-level files that matter.
func readTar(ctx context.Context, b storage.Bucket, key string) (int, int64, []string, error) {
	algo, _ := compress.FromTarName(path.Base(key))
	rc, err := b.Get(ctx, key, 0, -1)
	if err != nil {
		return 0, 0, nil, err
	}
	defer rc.Close()
	dr, err := compress.NewReader(storage.ContextReader(ctx, rc), algo)
	if err != nil {
		return 0, 0, nil, err
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	var members int
	var total int64
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// Drain the padding after the end-of-archive blocks, so that
			// the decompressor checks its trailing checksum.
			if _, err := io.Copy(io.Discard, dr); err != nil {
				return members, total, names, fmt.Errorf("after the last member: %w", err)
			}
			return members, total, names, nil
		}
		if err != nil {
			return members, total, names, fmt.Errorf("after %d members: %w", members, err)
		}
		n, err := io.Copy(io.Discard, tr)
		total += n
		if err != nil {
			return members, total, names, fmt.Errorf("member %s: %w", h.Name, err)
		}
		if n != h.Size && h.Typeflag == tar.TypeReg {
			return members, total, names, fmt.Errorf("member %s: %d bytes, header says %d", h.Name, n, h.Size)
		}
		members++
		name := strings.TrimPrefix(path.Clean(h.Name), "./")
		switch name {
		case "global/pg_control", "backup_label", "PG_VERSION":
			names = append(names, name)
		}
	}
}

// parallel runs fn for every key with opts.Jobs workers.
func (r *run) parallel(ctx context.Context, keys []string, fn func(string)) {
	ch := make(chan string)
	var wg sync.WaitGroup
	for range r.opts.Jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range ch {
				fn(k)
			}
		}()
	}
	for _, k := range keys {
		if ctx.Err() != nil {
			break
		}
		ch <- k
	}
	close(ch)
	wg.Wait()
}
