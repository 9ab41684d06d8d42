package wal

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/mem"
)

// fakeWAL writes a WAL file with random-ish content into dir. Segment
// names get a valid first page header (restore checks it) and must have a
// WAL segment size.
func fakeWAL(t *testing.T, dir, name string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data[:size/4]) // partly compressible, like real WAL
	if seg, err := ParseSegment(name); err == nil {
		if !validSegmentSize(int64(size)) {
			t.Fatalf("fakeWAL: %d is not a segment size", size)
		}
		binary.LittleEndian.PutUint16(data[0:2], 0xD110)
		binary.LittleEndian.PutUint32(data[4:8], seg.TLI)
		binary.LittleEndian.PutUint64(data[8:16], seg.segNo(int64(size))*uint64(size))
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSegmentNext(t *testing.T) {
	for _, c := range []struct {
		name string
		size int64
		want string
	}{
		{"000000010000000000000001", 16 << 20, "000000010000000000000002"},
		{"0000000100000000000000FF", 16 << 20, "000000010000000100000000"},
		{"000000010000000000000FFF", 1 << 20, "000000010000000100000000"},
		{"0000000100000000000000FF", 1 << 20, "000000010000000000000100"},
		{"00000002000000050000000F", 256 << 20, "000000020000000600000000"},
	} {
		s, err := ParseSegment(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Next(c.size).Name(); got != c.want {
			t.Errorf("%s.Next(%d) = %s, want %s", c.name, c.size, got, c.want)
		}
	}
	if got := SegmentOf(3, 0x1_0300_0028, 16<<20).Name(); got != "000000030000000100000003" {
		t.Errorf("SegmentOf = %s", got)
	}
}

func TestParseHistory(t *testing.T) {
	h, err := ParseHistory([]byte("1\t0/3000000\tno recovery target specified\n\n2\t1/A0000028\tat restore point \"x\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].TLI != 1 || h[0].SwitchLSN != 0x3000000 || h[1].SwitchLSN != 0x1_A000_0028 {
		t.Fatalf("ParseHistory = %+v", h)
	}
	if _, err := ParseHistory([]byte("x 0/1\n")); err == nil {
		t.Fatal("bad history accepted")
	}
}

func TestArchiveRestoreEveryCodec(t *testing.T) {
	for _, algo := range []compress.Algorithm{compress.None, compress.Gzip, compress.Bzip2, compress.XZ, compress.Snappy, compress.Zstd, compress.LZ4} {
		t.Run(string(algo)+"_", func(t *testing.T) {
			b := mem.New()
			dir := t.TempDir()
			names := []string{"000000010000000A00000042", "00000002.history", "000000010000000A00000042.00000028.backup", "000000020000000A00000043.partial"}
			var contents [][]byte
			for _, n := range names {
				contents = append(contents, fakeWAL(t, dir, n, 1<<20))
			}
			a := &Archiver{Bucket: b, Server: "pg", Compression: algo}
			for _, n := range names {
				if err := a.Archive(t.Context(), filepath.Join(dir, n)); err != nil {
					t.Fatalf("Archive(%s): %v", n, err)
				}
			}
			wantKeys := []string{
				"pg/wals/000000010000000A/000000010000000A00000042" + algo.WALSuffix(),
				"pg/wals/000000010000000A/000000010000000A00000042.00000028.backup" + algo.WALSuffix(),
				"pg/wals/000000020000000A/000000020000000A00000043.partial" + algo.WALSuffix(),
				"pg/wals/00000002.history" + algo.WALSuffix(),
			}
			var got []string
			_ = b.List(t.Context(), "", func(o storage.ObjectInfo) error { got = append(got, o.Key); return nil })
			sort.Strings(wantKeys)
			if strings.Join(got, "\n") != strings.Join(wantKeys, "\n") {
				t.Fatalf("keys:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantKeys, "\n"))
			}
			r := &Restorer{Bucket: b, Server: "pg"}
			out := t.TempDir()
			for i, n := range names {
				if strings.HasSuffix(n, ".backup") {
					continue // restore never serves .backup files by their own name lookup rules
				}
				dest := filepath.Join(out, "RECOVERYXLOG")
				req := strings.TrimSuffix(n, ".partial")
				if err := r.Restore(t.Context(), req, dest); err != nil {
					t.Fatalf("Restore(%s): %v", req, err)
				}
				data, _ := os.ReadFile(dest)
				if !bytes.Equal(data, contents[i]) {
					t.Fatalf("restored %s differs", n)
				}
			}
		})
	}
}

func TestArchiveIdempotentAndConflict(t *testing.T) {
	b := mem.New()
	dir := t.TempDir()
	name := "000000010000000000000001"
	fakeWAL(t, dir, name, 1<<20)
	a := &Archiver{Bucket: b, Server: "s", Compression: compress.Gzip}
	p := filepath.Join(dir, name)
	if err := a.Archive(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	// Same content again: success, no rewrite.
	before, _ := b.Stat(t.Context(), "s/wals/0000000100000000/"+name+".gz")
	if err := a.Archive(t.Context(), p); err != nil {
		t.Fatalf("re-archive of identical content: %v", err)
	}
	after, _ := b.Stat(t.Context(), "s/wals/0000000100000000/"+name+".gz")
	if !before.ModTime.Equal(after.ModTime) {
		t.Fatal("identical re-archive rewrote the object")
	}
	// Different content: refused, object untouched.
	fakeWAL(t, dir, name, 1<<20)
	err := a.Archive(t.Context(), p)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("archive of different content = %v, want ErrConflict", err)
	}
	got, _ := storage.ReadAll(t.Context(), b, "s/wals/0000000100000000/"+name+".gz")
	if !bytes.Equal(got, mustGzipOf(t, b, before)) {
		t.Fatal("conflicting archive changed the stored object")
	}
	// Explicit override replaces it.
	a.Overwrite = true
	if err := a.Archive(t.Context(), p); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	r := &Restorer{Bucket: b, Server: "s"}
	dest := filepath.Join(t.TempDir(), "x")
	if err := r.Restore(t.Context(), name, dest); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(p)
	gotData, _ := os.ReadFile(dest)
	if !bytes.Equal(want, gotData) {
		t.Fatal("after overwrite the archive does not hold the new content")
	}
}

// mustGzipOf returns the stored bytes matching the ETag seen before.
func mustGzipOf(t *testing.T, b *mem.Bucket, before storage.ObjectInfo) []byte {
	t.Helper()
	got, _ := storage.ReadAll(t.Context(), b, before.Key)
	now, _ := b.Stat(t.Context(), before.Key)
	if now.ETag != before.ETag {
		t.Fatal("stored object changed")
	}
	return got
}

func TestRestoreMissingAndInvalid(t *testing.T) {
	r := &Restorer{Bucket: mem.New(), Server: "s"}
	dest := filepath.Join(t.TempDir(), "x")
	if err := r.Restore(t.Context(), "000000010000000000000009", dest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing = %v", err)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Fatal("missing WAL left a file at dest")
	}
	for _, bad := range []string{"foo", "../000000010000000000000001", "000000010000000000000001.gz"} {
		if err := r.Restore(t.Context(), bad, dest); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Restore(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
}

func TestRestoreCorruptLeavesNothing(t *testing.T) {
	b := mem.New()
	dir := t.TempDir()
	name := "000000010000000000000001"
	fakeWAL(t, dir, name, 1<<20)
	a := &Archiver{Bucket: b, Server: "s", Compression: compress.Zstd}
	if err := a.Archive(t.Context(), filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	key := "s/wals/0000000100000000/" + name + ".zst"
	data, _ := storage.ReadAll(t.Context(), b, key)
	truncated := data[:len(data)/2]
	_ = b.Put(t.Context(), key, bytes.NewReader(truncated), int64(len(truncated)), storage.PutOptions{})
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	err := (&Restorer{Bucket: b, Server: "s"}).Restore(t.Context(), name, dest)
	if err == nil || !strings.Contains(err.Error(), key) {
		t.Fatalf("restore of truncated object = %v, want error naming %s", err, key)
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	if len(entries) != 0 {
		t.Fatalf("corrupt restore left files: %v", entries)
	}
}

func TestPreferCompleteSegmentOverPartial(t *testing.T) {
	b := mem.New()
	ctx := t.Context()
	put := func(key, body string) {
		_ = b.Put(ctx, key, strings.NewReader(body), int64(len(body)), storage.PutOptions{})
	}
	full := string(fakeWAL(t, t.TempDir(), "000000010000000000000005", 1<<20))
	put("s/wals/0000000100000000/000000010000000000000005.partial", "partial")
	put("s/wals/0000000100000000/000000010000000000000005", full)
	put("s/wals/0000000100000000/000000010000000000000006.partial", "only-partial")
	dest := filepath.Join(t.TempDir(), "x")
	r := &Restorer{Bucket: b, Server: "s"}
	if err := r.Restore(ctx, "000000010000000000000005", dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != full {
		t.Fatalf("got %q, want the complete segment", got)
	}
	if err := r.Restore(ctx, "000000010000000000000006", dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "only-partial" {
		t.Fatalf("got %q, want the partial", got)
	}
	r.NoPartial = true
	if err := r.Restore(ctx, "000000010000000000000006", dest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("--no-partial: %v", err)
	}
}

func TestBatchArchivesReadyFilesOnce(t *testing.T) {
	b := mem.New()
	walDir := t.TempDir()
	status := filepath.Join(walDir, "archive_status")
	_ = os.MkdirAll(status, 0o700)
	var names []string
	for i := 1; i <= 6; i++ {
		n := fmt.Sprintf("0000000100000000000000%02X", i)
		names = append(names, n)
		fakeWAL(t, walDir, n, 1<<20)
		_ = os.WriteFile(filepath.Join(status, n+".ready"), nil, 0o600)
	}
	spool, err := OpenSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingBucket{Bucket: b}
	a := &Archiver{Bucket: counting, Server: "s", Compression: compress.LZ4}
	// PostgreSQL asks for each file in order; mark .done as it would.
	for _, n := range names {
		if err := a.Batch(t.Context(), filepath.Join(walDir, n), 4, spool); err != nil {
			t.Fatalf("Batch(%s): %v", n, err)
		}
		_ = os.Rename(filepath.Join(status, n+".ready"), filepath.Join(status, n+".done"))
	}
	if counting.puts != len(names) {
		t.Fatalf("%d uploads for %d WAL files, want exactly one each", counting.puts, len(names))
	}
	for _, n := range names {
		if _, err := b.Stat(t.Context(), "s/wals/0000000100000000/"+n+".lz4"); err != nil {
			t.Errorf("%s not archived: %v", n, err)
		}
	}
	left, _ := os.ReadDir(filepath.Join(spool.Dir(), "archived"))
	if len(left) != 0 {
		t.Fatalf("spool still records %d files", len(left))
	}
}

type countingBucket struct {
	storage.Bucket
	puts int
}

func (c *countingBucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts storage.PutOptions) error {
	c.puts++
	return c.Bucket.Put(ctx, key, r, size, opts)
}

func TestPrefetch(t *testing.T) {
	b := mem.New()
	dir := t.TempDir()
	const size = 1 << 20 // 1 MiB segments: next of ...FFF rolls the log
	names := []string{"000000010000000000000FFE", "000000010000000000000FFF", "000000010000000100000000", "000000010000000100000001"}
	contents := map[string][]byte{}
	a := &Archiver{Bucket: b, Server: "s", Compression: compress.Snappy}
	for _, n := range names {
		contents[n] = fakeWAL(t, dir, n, size)
		if err := a.Archive(t.Context(), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	spool, _ := OpenSpool(t.TempDir())
	counting := &countingGets{Bucket: b}
	p := &Prefetcher{Restorer: &Restorer{Bucket: counting, Server: "s"}, Spool: spool, MaxParallel: 3}
	out := t.TempDir()
	for _, n := range names {
		dest := filepath.Join(out, "RECOVERYXLOG")
		if err := p.Restore(t.Context(), n, dest); err != nil {
			t.Fatalf("Restore(%s): %v", n, err)
		}
		got, _ := os.ReadFile(dest)
		if !bytes.Equal(got, contents[n]) {
			t.Fatalf("%s differs", n)
		}
	}
	// The next one is missing: reported as not found, and the spool's
	// record of it is consumed so that a later request asks again.
	dest := filepath.Join(out, "RECOVERYXLOG")
	next := "000000010000000100000002"
	if err := p.Restore(t.Context(), next, dest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("end of WAL: %v", err)
	}
	fakeWAL(t, dir, next, size)
	if err := a.Archive(t.Context(), filepath.Join(dir, next)); err != nil {
		t.Fatal(err)
	}
	if err := p.Restore(t.Context(), next, dest); err != nil {
		t.Fatalf("after the segment was archived: %v", err)
	}
	if counting.gets >= 2*len(names) {
		t.Fatalf("%d downloads for %d segments: prefetch did not serve from the spool", counting.gets, len(names))
	}
}

type countingGets struct {
	storage.Bucket
	gets int
}

func (c *countingGets) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	c.gets++
	return c.Bucket.Get(ctx, key, off, n)
}

func TestCheckEmpty(t *testing.T) {
	b := mem.New()
	ctx := t.Context()
	if err := CheckEmpty(ctx, b, "s", 0); err != nil {
		t.Fatalf("empty archive: %v", err)
	}
	_ = b.Put(ctx, "s/wals/0000000200000000/000000020000000000000003.gz", strings.NewReader("x"), 1, storage.PutOptions{})
	_ = b.Put(ctx, "other/wals/0000000500000000/000000050000000000000003", strings.NewReader("x"), 1, storage.PutOptions{})
	if err := CheckEmpty(ctx, b, "s", 0); !errors.Is(err, ErrArchiveNotEmpty) {
		t.Fatalf("non-empty: %v", err)
	}
	if err := CheckEmpty(ctx, b, "s", 3); err != nil {
		t.Fatalf("--timeline 3 with only timeline 2: %v", err)
	}
	if err := CheckEmpty(ctx, b, "s", 2); !errors.Is(err, ErrArchiveNotEmpty) {
		t.Fatalf("--timeline 2: %v", err)
	}
}

func TestRestoreRefusesTruncatedOrMisnamedPlainSegment(t *testing.T) {
	b := mem.New()
	dir := t.TempDir()
	good := fakeWAL(t, dir, "000000010000000000000003", 1<<20)
	other := fakeWAL(t, dir, "000000010000000000000009", 1<<20)
	put := func(name string, data []byte) {
		_ = b.Put(t.Context(), "s/wals/0000000100000000/"+name, bytes.NewReader(data), int64(len(data)), storage.PutOptions{})
	}
	put("000000010000000000000003", good[:len(good)/2])
	put("000000010000000000000004", other)
	r := &Restorer{Bucket: b, Server: "s"}
	for name, want := range map[string]string{
		"000000010000000000000003": "not a WAL segment size",
		"000000010000000000000004": "holds another segment",
	} {
		dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
		err := r.Restore(t.Context(), name, dest)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), name) {
			t.Errorf("Restore(%s) = %v, want an error naming the object and %q", name, err, want)
		}
		if _, err := os.Stat(dest); err == nil {
			t.Errorf("Restore(%s) left a file for PostgreSQL", name)
		}
	}
}
