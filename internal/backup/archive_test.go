package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/mem"
)

// newTestSink returns a sink writing into a memory bucket.
func newTestSink(t *testing.T, algo compress.Algorithm, maxSize int64, jobs int) (*sink, *mem.Bucket) {
	t.Helper()
	b := mem.New()
	ctx, fail := context.WithCancelCause(context.Background())
	t.Cleanup(func() { fail(nil) })
	return &sink{bucket: b, server: "srv", backupID: "20240101T000000", algo: algo, maxSize: maxSize,
		jobs: jobs, progress: &counter{}, ctx: ctx, fail: fail, tags: map[string]string{"k": "v"}}, b
}

// readArchive decompresses and reads one stored archive: member name to
// content ("" for directories, "-> target" for links).
func readArchive(t *testing.T, b storage.Bucket, key string) map[string]string {
	t.Helper()
	algo, ok := compress.FromTarName(path.Base(key))
	if !ok {
		t.Fatalf("%s is not an archive name", key)
	}
	data, err := storage.ReadAll(context.Background(), b, key)
	if err != nil {
		t.Fatal(err)
	}
	r, err := compress.NewReader(bytes.NewReader(data), algo)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(r)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if !strings.HasSuffix(h.Name, "/") {
				t.Errorf("%s: directory %q has no trailing slash", key, h.Name)
			}
			out[h.Name] = ""
		case tar.TypeSymlink:
			out[h.Name] = "-> " + h.Linkname
		default:
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read %s member %s: %v", key, h.Name, err)
			}
			out[h.Name] = string(body)
		}
	}
	if rest, err := io.ReadAll(r); err != nil || len(bytes.Trim(rest, "\x00")) != 0 {
		t.Fatalf("%s: trailing data after the archive (%d bytes, %v)", key, len(rest), err)
	}
	return out
}

func listKeys(t *testing.T, b storage.Bucket) []string {
	t.Helper()
	var keys []string
	err := b.List(context.Background(), "", func(o storage.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestArchiveSplitParallel archives a tree with several jobs and a small
// part limit: every part must be a complete archive named data.tar.gz,
// data_0001.tar.gz, ... and together they hold every member exactly once.
func TestArchiveSplitParallel(t *testing.T) {
	root := t.TempDir()
	want := map[string]string{"./": ""}
	rng := rand.New(rand.NewPCG(1, 2))
	for d := range 4 {
		dir := fmt.Sprintf("base/%d", d)
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			t.Fatal(err)
		}
		want["base/"] = ""
		want[dir+"/"] = ""
		for f := range 25 {
			body := make([]byte, rng.IntN(40000))
			for i := range body {
				body[i] = byte(rng.IntN(256))
			}
			name := fmt.Sprintf("%s/%d", dir, f)
			if err := os.WriteFile(filepath.Join(root, name), body, 0o600); err != nil {
				t.Fatal(err)
			}
			want[name] = string(body)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want["./PG_VERSION"] = "15\n"
	if err := os.Symlink("PG_VERSION", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	want["./link"] = "-> PG_VERSION"

	s, b := newTestSink(t, compress.Gzip, 200<<10, 3)
	a := newArchive(s, "data")
	ctx := context.Background()
	if err := a.run(ctx, func(emit func(*member) error) error { return walk(ctx, root, nil, emit) }); err != nil {
		t.Fatal(err)
	}
	if err := a.add(ctx, 0, &member{name: "backup_label", data: []byte("LABEL"), hdr: labelHeader()}, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	want["backup_label"] = "LABEL"
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	keys := listKeys(t, b)
	if len(keys) < 4 {
		t.Fatalf("want the archive split in at least 4 parts, got %v", keys)
	}
	got := map[string]string{}
	for i, k := range keys {
		wantKey := "srv/base/20240101T000000/data.tar.gz"
		if i > 0 {
			wantKey = fmt.Sprintf("srv/base/20240101T000000/data_%04d.tar.gz", i)
		}
		if k != wantKey {
			t.Fatalf("part %d is %s, want %s (all: %v)", i, k, wantKey, keys)
		}
		if tags := b.Tags(k); tags["k"] != "v" {
			t.Errorf("%s has tags %v", k, tags)
		}
		for name, body := range readArchive(t, b, k) {
			if _, dup := got[name]; dup {
				t.Errorf("%s is in two parts", name)
			}
			got[name] = body
		}
	}
	if len(got) != len(want) {
		t.Errorf("archived %d members, want %d", len(got), len(want))
	}
	for name, body := range want {
		if g, ok := got[name]; !ok || g != body {
			t.Errorf("member %s: present %v, content matches %v", name, ok, g == body)
		}
	}
	if n := s.progress.n.Load(); n < 1<<20 {
		t.Errorf("progress counted %d bytes", n)
	}
	stats := a.stats()
	if len(stats) != len(keys) {
		t.Errorf("stats for %d parts, want %d", len(stats), len(keys))
	}
}

// TestCopyPadded: a file that shrank is padded with NULs to the header
// size, one that grew is cut.
func TestCopyPadded(t *testing.T) {
	var out bytes.Buffer
	n, err := copyPadded(&out, strings.NewReader("abc"), 8, make([]byte, 2))
	if err != nil || n != 8 || out.String() != "abc\x00\x00\x00\x00\x00" {
		t.Fatalf("shrunk: %d %v %q", n, err, out.String())
	}
	out.Reset()
	n, err = copyPadded(&out, strings.NewReader("abcdefgh"), 3, make([]byte, 2))
	if err != nil || n != 3 || out.String() != "abc" {
		t.Fatalf("grown: %d %v %q", n, err, out.String())
	}
}

// TestVanishedAndShrunkFiles: an entry that disappears between the walk
// and its copy is skipped, one that shrinks keeps its size.
func TestVanishedAndShrunkFiles(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"gone", "kept"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, b := newTestSink(t, compress.None, 1<<30, 1)
	a := newArchive(s, "data")
	ctx := context.Background()
	var o owners
	buf := make([]byte, 1024)
	// Simulate vanishing: the member points to a path that no longer exists.
	if err := a.add(ctx, 0, &member{name: "./gone", path: filepath.Join(root, "gone-now")}, buf); err != nil {
		t.Fatalf("vanished file: %v", err)
	}
	h, rc, err := o.open(&member{name: "./kept", path: filepath.Join(root, "kept")})
	if err != nil {
		t.Fatal(err)
	}
	_ = rc.Close()
	if h.Size != 4 || h.Typeflag != tar.TypeReg || h.Mode != 0o600 {
		t.Fatalf("header %+v", h)
	}
	if err := a.add(ctx, 0, &member{name: "./kept", path: filepath.Join(root, "kept")}, buf); err != nil {
		t.Fatal(err)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	got := readArchive(t, b, "srv/base/20240101T000000/data.tar")
	if !slices.Equal(mapKeys(got), []string{"./kept"}) {
		t.Fatalf("members %v", mapKeys(got))
	}
}

func mapKeys(m map[string]string) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

// failingBucket fails every Put after reading a little.
type failingBucket struct{ *mem.Bucket }

var errInjected = errors.New("injected upload failure")

func (f failingBucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts storage.PutOptions) error {
	_, _ = io.CopyN(io.Discard, r, 1000)
	return errInjected
}

// TestUploadFailure: an upload failure stops the archive with that error
// and leaves no object.
func TestUploadFailure(t *testing.T) {
	root := t.TempDir()
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprint(i)), bytes.Repeat([]byte{byte(i)}, 100000), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := newTestSink(t, compress.None, 1<<30, 2)
	mb := mem.New()
	s.bucket = failingBucket{mb}
	a := newArchive(s, "data")
	err := a.run(s.ctx, func(emit func(*member) error) error { return walk(s.ctx, root, nil, emit) })
	if err == nil {
		err = a.close()
	}
	if !errors.Is(err, errInjected) && !errors.Is(context.Cause(s.ctx), errInjected) {
		t.Fatalf("error %v, cause %v; want the injected failure", err, context.Cause(s.ctx))
	}
	a.abort(err)
	if keys := listKeys(t, mb); len(keys) != 0 {
		t.Fatalf("objects left: %v", keys)
	}
}

// TestEmptyArchive: an archive without members is stored as an empty tar.
func TestEmptyArchive(t *testing.T) {
	s, b := newTestSink(t, compress.Bzip2, 1<<30, 2)
	a := newArchive(s, "16385")
	if err := a.run(s.ctx, func(func(*member) error) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	keys := listKeys(t, b)
	if !slices.Equal(keys, []string{"srv/base/20240101T000000/16385.tar.bz2"}) {
		t.Fatalf("objects %v", keys)
	}
	if got := readArchive(t, b, keys[0]); len(got) != 0 {
		t.Fatalf("members %v", got)
	}
}

// TestArchiveCodecs writes and reads back an archive with every codec,
// named with its suffix.
func TestArchiveCodecs(t *testing.T) {
	root := t.TempDir()
	body := bytes.Repeat([]byte("postgres page "), 5000)
	if err := os.WriteFile(filepath.Join(root, "f"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, algo := range append([]compress.Algorithm{compress.None}, compress.Algorithms()...) {
		s, b := newTestSink(t, algo, 1<<30, 1)
		a := newArchive(s, "data")
		if err := a.run(s.ctx, func(emit func(*member) error) error { return walk(s.ctx, root, nil, emit) }); err != nil {
			t.Fatal(err)
		}
		if err := a.close(); err != nil {
			t.Fatal(err)
		}
		key := "srv/base/20240101T000000/data.tar" + algo.TarSuffix()
		if got := readArchive(t, b, key); got["./f"] != string(body) {
			t.Errorf("%s: ./f not read back", algo)
		}
	}
}
