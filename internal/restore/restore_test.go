package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/mem"
)

func TestCleanName(t *testing.T) {
	cases := []struct {
		in, want string
		bad      bool
	}{
		{in: "./", want: "."},
		{in: ".", want: "."},
		{in: "./PG_VERSION", want: "PG_VERSION"},
		{in: "PG_VERSION", want: "PG_VERSION"},
		{in: "base/", want: "base"},
		{in: "base/1/1259", want: "base/1/1259"},
		{in: "./base//1/", want: "base/1"},
		{in: "a/./b", want: "a/b"},
		{in: "../x", bad: true},
		{in: "a/../b", bad: true},
		{in: "a/../../b", bad: true},
		{in: "..", bad: true},
		{in: "/etc/passwd", bad: true},
		{in: "", bad: true},
		{in: "a\x00b", bad: true},
	}
	for _, c := range cases {
		got, err := CleanName(c.in)
		if c.bad {
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("CleanName(%q) = %q, %v; want ErrUnsafePath", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// entry is one member of a test archive.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func makeTar(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 15, 10, 30, 0, 500_000_000, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, ModTime: mtime, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o600
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compressed(t *testing.T, data []byte, a compress.Algorithm) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := compress.NewTarWriter(&buf, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func extractAllOf(t *testing.T, root string, entries []entry) error {
	t.Helper()
	x := newExtractor(root)
	if err := x.extract(context.Background(), bytes.NewReader(makeTar(t, entries)), make([]byte, 512), func(int64) {}); err != nil {
		return err
	}
	return x.finish()
}

func TestExtractRejectsUnsafeMembers(t *testing.T) {
	cases := map[string][]entry{
		"dotdot":   {{name: "../evil", body: "x"}},
		"absolute": {{name: "/tmp/evil", body: "x"}},
		"deep":     {{name: "a/../../evil", body: "x"}},
		"symlink escape": {
			{name: "x", typ: tar.TypeSymlink, link: "OUTSIDE"},
			{name: "x/evil", body: "x"},
		},
		"symlink dir escape": {
			{name: "x", typ: tar.TypeSymlink, link: "OUTSIDE"},
			{name: "x/sub/", typ: tar.TypeDir, mode: 0o700},
		},
		"hard link outside": {{name: "h", typ: tar.TypeLink, link: "../outside-file"}},
		"hard link through symlink": {
			{name: "x", typ: tar.TypeSymlink, link: "OUTSIDE"},
			{name: "h", typ: tar.TypeLink, link: "x/secret"},
		},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
			for _, d := range []string{root, outside} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
				t.Fatal(err)
			}
			for i := range entries {
				entries[i].link = strings.ReplaceAll(entries[i].link, "OUTSIDE", outside)
			}
			err := extractAllOf(t, root, entries)
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("extract: %v, want ErrUnsafePath", err)
			}
			got, _ := os.ReadDir(outside)
			if len(got) != 1 {
				t.Fatalf("the archive wrote outside the target: %v", got)
			}
			if _, err := os.Lstat(filepath.Join(base, "evil")); err == nil {
				t.Fatal("the archive wrote next to the target")
			}
		})
	}
}

func TestExtractAttributes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "r")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	err := extractAllOf(t, root, []entry{
		{name: "./", typ: tar.TypeDir, mode: 0o700},
		{name: "./PG_VERSION", body: "15\n", mode: 0o640},
		{name: "base/1/1259", body: "rel"}, // parent directories implied
		{name: "base/", typ: tar.TypeDir, mode: 0o750},
		{name: "link", typ: tar.TypeSymlink, link: "PG_VERSION"},
		{name: "./PG_VERSION", body: "16\n", mode: 0o600}, // a later member replaces
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(rel string, mode os.FileMode, body string) {
		t.Helper()
		p := filepath.Join(root, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", rel, fi.Mode().Perm(), mode)
		}
		if want := time.Date(2024, 1, 15, 10, 30, 0, 500_000_000, time.UTC); !fi.ModTime().Equal(want) {
			t.Errorf("%s mtime %v, want %v", rel, fi.ModTime(), want)
		}
		if body != "" {
			if b, _ := os.ReadFile(p); string(b) != body {
				t.Errorf("%s content %q, want %q", rel, b, body)
			}
		}
	}
	check(".", 0o700, "")
	check("PG_VERSION", 0o600, "16\n")
	check("base", 0o750, "")
	check("base/1/1259", 0o600, "rel")
	if l, err := os.Readlink(filepath.Join(root, "link")); err != nil || l != "PG_VERSION" {
		t.Errorf("link = %q, %v", l, err)
	}
}

// testBackup stores a backup with a data archive in two parts (gzip and
// plain) and a bzip2 tablespace archive.
func testBackup(t *testing.T, tsLocation string) (*mem.Bucket, catalog.Entry) {
	t.Helper()
	b := mem.New()
	ctx := context.Background()
	id := "20240115T103000"
	put := func(name string, data []byte) {
		if err := b.Put(ctx, "srv/base/"+id+"/"+name, bytes.NewReader(data), int64(len(data)), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("data.tar.gz", compressed(t, makeTar(t, []entry{
		{name: "./", typ: tar.TypeDir, mode: 0o700},
		{name: "./PG_VERSION", body: "15\n"},
		{name: "./postgresql.auto.conf", body: "# auto"},
		{name: "pg_wal/", typ: tar.TypeDir, mode: 0o700},
		{name: "pg_tblspc/", typ: tar.TypeDir, mode: 0o700},
	}), compress.Gzip))
	put("data_0001.tar", makeTar(t, []entry{
		{name: "global/pg_control", body: "control"},
		{name: "backup_label", body: "LABEL", mode: 0o644},
	}))
	put("16385.tar.bz2", compressed(t, makeTar(t, []entry{
		{name: "PG_15_202209061/", typ: tar.TypeDir, mode: 0o700},
		{name: "PG_15_202209061/5/16390", body: "ts-rel"},
	}), compress.Bzip2))
	put("unknown.zip", []byte("ignored"))
	info := catalog.New()
	v, tli, status, end := 150004, 1, catalog.StatusDone, "0/3000100"
	info.Version, info.Timeline, info.Status, info.EndXlog = &v, &tli, &status, &end
	endTime := time.Date(2024, 1, 15, 10, 31, 0, 0, time.UTC)
	info.EndTime = &endTime
	info.Tablespaces = []catalog.Tablespace{{Name: "ts1", OID: 16385, Location: tsLocation}}
	cat := &catalog.Catalog{Bucket: b, Server: "srv"}
	if err := cat.Put(ctx, id, info); err != nil {
		t.Fatal(err)
	}
	return b, catalog.Entry{ID: id, Info: info}
}

func TestRestoreRoundTrip(t *testing.T) {
	base := t.TempDir()
	b, e := testBackup(t, filepath.Join(base, "original-ts"))
	dest, ts := filepath.Join(base, "data"), filepath.Join(base, "ts")
	rt := &RecoveryTarget{RestoreCommand: "bcloud wal-restore file:///s srv %f %p", Name: "it's"}
	err := Restore(context.Background(), Options{Bucket: b, Server: "srv", Backup: e, Dest: dest,
		Tablespaces: map[string]string{"ts1": ts, "unknown": "/nowhere"}, Jobs: 2, Recovery: rt})
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]string{
		"data/PG_VERSION":                              "15\n",
		"data/global/pg_control":                       "control",
		"data/backup_label":                            "LABEL",
		"ts/PG_15_202209061/5/16390":                   "ts-rel",
		"data/pg_tblspc/16385/PG_15_202209061/5/16390": "ts-rel",
		"data/recovery.signal":                         "",
	} {
		got, err := os.ReadFile(filepath.Join(base, rel))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", rel, got, err, want)
		}
	}
	if l, _ := os.Readlink(filepath.Join(dest, "pg_tblspc", "16385")); l != ts {
		t.Errorf("tablespace link -> %q, want %s", l, ts)
	}
	if _, err := os.Stat(filepath.Join(base, "original-ts")); err == nil {
		t.Error("the relocated tablespace was also restored to its original location")
	}
	auto, _ := os.ReadFile(filepath.Join(dest, "postgresql.auto.conf"))
	for _, want := range []string{"# auto\n# Recovery settings", "restore_command = 'bcloud wal-restore file:///s srv %f %p'\n",
		"recovery_target_name = 'it''s'\n", "recovery_target_timeline = 'latest'\n", "recovery_target_action = 'promote'\n"} {
		if !strings.Contains(string(auto), want) {
			t.Errorf("postgresql.auto.conf lacks %q:\n%s", want, auto)
		}
	}

	// A second restore into the same directories is refused...
	err = Restore(context.Background(), Options{Bucket: b, Server: "srv", Backup: e, Dest: dest,
		Tablespaces: map[string]string{"ts1": ts}})
	if !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore into a non-empty directory: %v, want ErrNotEmpty", err)
	}
	// ...unless forced.
	err = Restore(context.Background(), Options{Bucket: b, Server: "srv", Backup: e, Dest: dest,
		Tablespaces: map[string]string{"ts1": ts}, Force: true})
	if err != nil {
		t.Fatalf("forced restore: %v", err)
	}
}

func TestRestoreCorruptArchive(t *testing.T) {
	base := t.TempDir()
	b, e := testBackup(t, filepath.Join(base, "ts"))
	ctx := context.Background()
	data, err := storage.ReadAll(ctx, b, "srv/base/20240115T103000/16385.tar.bz2")
	if err != nil {
		t.Fatal(err)
	}
	key := "srv/base/20240115T103000/16385.tar.bz2"
	if err := b.Put(ctx, key, bytes.NewReader(data[:len(data)/2]), int64(len(data)/2), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(base, "data")
	err = Restore(ctx, Options{Bucket: b, Server: "srv", Backup: e, Dest: dest, Jobs: 1})
	if err == nil || !strings.Contains(err.Error(), key) {
		t.Fatalf("restore of a truncated archive: %v; want an error naming %s", err, key)
	}
	for _, dir := range []string{dest, filepath.Join(base, "ts")} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s holds a partial restore: %v", dir, entries)
		}
	}
}

func TestRestoreMissingArchive(t *testing.T) {
	base := t.TempDir()
	b, e := testBackup(t, filepath.Join(base, "ts"))
	if err := b.Delete(context.Background(), "srv/base/20240115T103000/16385.tar.bz2"); err != nil {
		t.Fatal(err)
	}
	err := Restore(context.Background(), Options{Bucket: b, Server: "srv", Backup: e, Dest: filepath.Join(base, "d")})
	if !errors.Is(err, ErrMissingArchive) {
		t.Fatalf("restore without the tablespace archive: %v", err)
	}
}

func TestSelect(t *testing.T) {
	base := t.TempDir()
	b, _ := testBackup(t, filepath.Join(base, "ts"))
	ctx := context.Background()
	// A second backup on timeline 2.
	info := catalog.New()
	v, tli, status, end := 150004, 2, catalog.StatusDone, "0/5000100"
	info.Version, info.Timeline, info.Status, info.EndXlog = &v, &tli, &status, &end
	endTime := time.Date(2024, 1, 16, 10, 0, 0, 0, time.UTC)
	info.EndTime = &endTime
	if err := (&catalog.Catalog{Bucket: b, Server: "srv"}).Put(ctx, "20240116T100000", info); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"srv/wals/0000000200000000/000000020000000000000005.gz", "srv/wals/00000003.history"} {
		if err := b.Put(ctx, k, strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		id   string
		sel  Selection
		want string
		err  error
	}{
		{id: "auto", want: "20240116T100000"},
		{id: "latest", want: "20240116T100000"},
		{id: "oldest", want: "20240115T103000"},
		{id: "20240115T103000", want: "20240115T103000"},
		{id: "auto", sel: Selection{Time: "2024-01-15 12:00:00+00:00"}, want: "20240115T103000"},
		{id: "auto", sel: Selection{Time: "2024-01-17T00:00:00Z"}, want: "20240116T100000"},
		{id: "auto", sel: Selection{Time: "2024-01-14 00:00:00+00"}, err: catalog.ErrNotFound},
		{id: "auto", sel: Selection{LSN: "0/4000000"}, want: "20240115T103000"},
		{id: "auto", sel: Selection{LSN: "0/6000000", TLI: "1"}, want: "20240115T103000"},
		{id: "auto", sel: Selection{TLI: "2"}, want: "20240116T100000"},
		{id: "auto", sel: Selection{TLI: "latest"}, err: catalog.ErrNotFound}, // timeline 3 has no backup
		{id: "auto", sel: Selection{TLI: "current"}, err: ErrBadSelection},
		{id: "auto", sel: Selection{Time: "x"}, err: ErrBadSelection},
		{id: "latest", sel: Selection{LSN: "0/1"}, err: ErrBadSelection},
	}
	for _, c := range cases {
		e, err := Select(ctx, b, "srv", c.id, c.sel)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Select(%s, %+v) = %s, %v; want %v", c.id, c.sel, e.ID, err, c.err)
			}
			continue
		}
		if err != nil || e.ID != c.want {
			t.Errorf("Select(%s, %+v) = %s, %v; want %s", c.id, c.sel, e.ID, err, c.want)
		}
	}
	n, err := highestTimeline(ctx, b, "srv")
	if err != nil || n != 3 {
		t.Errorf("highestTimeline = %d, %v; want 3", n, err)
	}
}

func TestParseTargetTime(t *testing.T) {
	got, err := ParseTargetTime("2024-01-15 10:30:00")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 1, 15, 10, 30, 0, 0, time.Local); !got.Equal(want) {
		t.Errorf("naive time = %v, want local %v", got, want)
	}
	got, err = ParseTargetTime("2024-01-15 10:30:00.5+02")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 1, 15, 8, 30, 0, 500_000_000, time.UTC); !got.Equal(want) {
		t.Errorf("time with zone = %v, want %v", got, want)
	}
}

func TestRecoveryTargetValidate(t *testing.T) {
	ok := []RecoveryTarget{
		{RestoreCommand: "x"},
		{RestoreCommand: "x", Time: "2024-01-01"},
		{RestoreCommand: "x", LSN: "0/1", Exclusive: true},
		{RestoreCommand: "x", XID: "1234", Timeline: "2", Action: "shutdown"},
		{RestoreCommand: "x", Immediate: true, Timeline: "current", Action: "pause"},
	}
	for _, rt := range ok {
		if err := rt.Validate(); err != nil {
			t.Errorf("%+v: %v", rt, err)
		}
	}
	bad := []RecoveryTarget{
		{},
		{RestoreCommand: "x", Time: "t", Name: "n"},
		{RestoreCommand: "x", LSN: "nope"},
		{RestoreCommand: "x", XID: "-1"},
		{RestoreCommand: "x", Timeline: "0"},
		{RestoreCommand: "x", Action: "explode"},
	}
	for _, rt := range bad {
		if err := rt.Validate(); err == nil {
			t.Errorf("%+v: want an error", rt)
		}
	}
}

func TestWriteRecoveryConfigPre12(t *testing.T) {
	dir := t.TempDir()
	rt := &RecoveryTarget{RestoreCommand: "cmd %f %p", LSN: "0/3000000", Exclusive: true}
	if err := WriteRecoveryConfig(dir, 110000, rt); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "recovery.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"restore_command = 'cmd %f %p'", "recovery_target_lsn = '0/3000000'", "recovery_target_inclusive = 'off'"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("recovery.conf lacks %q:\n%s", want, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "recovery.signal")); err == nil {
		t.Error("recovery.signal written for PostgreSQL 11")
	}
}

// flakyBucket breaks the first download of each object after a few bytes.
type flakyBucket struct {
	*mem.Bucket
	broken map[string]bool
	mu     sync.Mutex
}

type breakingReader struct {
	r    io.ReadCloser
	left int
}

func (b *breakingReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	if len(p) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= n
	return n, err
}

func (b *breakingReader) Close() error { return b.r.Close() }

func (f *flakyBucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := f.Bucket.Get(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.broken[key] && strings.Contains(key, ".tar") {
		f.broken[key] = true
		return &breakingReader{r: rc, left: 100}, nil
	}
	return rc, nil
}

// TestRestoreResumesDownload: a download cut mid-stream resumes where it
// stopped and the restore succeeds.
func TestRestoreResumesDownload(t *testing.T) {
	base := t.TempDir()
	b, e := testBackup(t, filepath.Join(base, "ts"))
	fb := &flakyBucket{Bucket: b, broken: map[string]bool{}}
	dest := filepath.Join(base, "data")
	if err := Restore(context.Background(), Options{Bucket: fb, Server: "srv", Backup: e, Dest: dest}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "global", "pg_control")); string(got) != "control" {
		t.Fatalf("pg_control = %q", got)
	}
	if len(fb.broken) != 3 {
		t.Fatalf("broke %d downloads, want 3", len(fb.broken))
	}
}
