package verify

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/mem"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

const segSize = 1 << 20

func p[T any](v T) *T { return &v }

// segment makes WAL bytes whose first page header carries its address.
func segment(s wal.Segment, headerTLI uint32) []byte {
	data := make([]byte, segSize)
	binary.LittleEndian.PutUint16(data[0:2], 0xD110)
	binary.LittleEndian.PutUint32(data[4:8], headerTLI)
	perLog := uint64((1 << 32) / segSize)
	binary.LittleEndian.PutUint64(data[8:16], (uint64(s.Log)*perLog+uint64(s.Seg))*segSize)
	copy(data[100:], fmt.Sprintf("records of %s", s.Name()))
	x := uint32(s.Seg)*2654435761 + 1
	for i := 200; i < 64<<10; i++ { // incompressible records, so a flipped byte matters
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		data[i] = byte(x)
	}
	return data
}

type fixture struct {
	b   *mem.Bucket
	dir string
}

func (f *fixture) archive(t *testing.T, name string, data []byte) {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	a := &wal.Archiver{Bucket: f.b, Server: "srv", Compression: compress.Zstd}
	if err := a.Archive(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

func tarOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	w, _ := compress.NewTarWriter(&buf, compress.Gzip)
	tw := tar.NewWriter(w)
	for name, body := range files {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = w.Close()
	return buf.Bytes()
}

// newFixture: one backup beginning at 1/00000010 (1 MiB segments), WAL
// through segment 0x18 on timeline 1, switch to timeline 2 at 0x15.
func newFixture(t *testing.T) *fixture {
	f := &fixture{b: mem.New(), dir: t.TempDir()}
	ctx := t.Context()
	info := catalog.New()
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	info.Status = p(catalog.StatusDone)
	info.BeginWAL, info.EndWAL = p("000000010000000000000010"), p("000000010000000000000011")
	info.BeginTime, info.EndTime = &end, &end
	info.Timeline = p(1)
	info.XLOGSegmentSize = p(int64(segSize))
	info.Tablespaces = []catalog.Tablespace{{Name: "tbs", OID: 16385, Location: "/srv/tbs"}}
	if err := (&catalog.Catalog{Bucket: f.b, Server: "srv"}).Put(ctx, "20261101T000000", info); err != nil {
		t.Fatal(err)
	}
	data := tarOf(t, map[string]string{"./PG_VERSION": "15\n", "global/pg_control": "ctl", "backup_label": "START WAL", "base/1/1259": strings.Repeat("x", 70000)})
	_ = f.b.Put(ctx, "srv/base/20261101T000000/data.tar.gz", bytes.NewReader(data), int64(len(data)), storage.PutOptions{})
	ts := tarOf(t, map[string]string{"PG_15_202209061/1/16386": "rows"})
	_ = f.b.Put(ctx, "srv/base/20261101T000000/16385.tar.gz", bytes.NewReader(ts), int64(len(ts)), storage.PutOptions{})
	for n := uint32(0x0E); n <= 0x15; n++ {
		s := wal.Segment{TLI: 1, Seg: n}
		f.archive(t, s.Name(), segment(s, 1))
	}
	f.archive(t, "00000002.history", []byte("1\t0/1580000\tno recovery target specified\n"))
	for n := uint32(0x15); n <= 0x18; n++ {
		s := wal.Segment{TLI: 2, Seg: n}
		f.archive(t, s.Name(), segment(s, 1))
	}
	return f
}

func (f *fixture) verify(t *testing.T) *Report {
	t.Helper()
	rep, err := Run(t.Context(), Options{Bucket: f.b, Server: "srv"})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestHealthy(t *testing.T) {
	rep := newFixture(t).verify(t)
	if !rep.OK() {
		t.Fatalf("healthy archive reported problems: %+v", rep.Problems)
	}
	if rep.WAL.From != "000000010000000000000010" || rep.WAL.To != "000000020000000000000018" || rep.WAL.Segments != 10 {
		t.Fatalf("WAL path = %+v, want 1/10..1/15 then 2/15..2/18", rep.WAL)
	}
	if len(rep.Backups) != 1 || rep.Backups[0].Archives != 2 || rep.Backups[0].Members != 5 {
		t.Fatalf("backups = %+v", rep.Backups)
	}
}

func expectProblem(t *testing.T, rep *Report, kind, object string) {
	t.Helper()
	for _, pr := range rep.Problems {
		if pr.Kind == kind && strings.Contains(pr.Object, object) {
			return
		}
	}
	t.Fatalf("want a %s problem on %s, got %+v", kind, object, rep.Problems)
}

func TestDeletedSegment(t *testing.T) {
	f := newFixture(t)
	_ = f.b.Delete(t.Context(), "srv/wals/0000000100000000/000000010000000000000012.zst")
	expectProblem(t, f.verify(t), "missing", "000000010000000000000012")
}

func TestDeletedSegmentAfterSwitch(t *testing.T) {
	f := newFixture(t)
	_ = f.b.Delete(t.Context(), "srv/wals/0000000200000000/000000020000000000000017.zst")
	expectProblem(t, f.verify(t), "missing", "000000020000000000000017")
}

func TestTruncatedTar(t *testing.T) {
	f := newFixture(t)
	key := "srv/base/20261101T000000/data.tar.gz"
	data, _ := storage.ReadAll(t.Context(), f.b, key)
	data = data[:len(data)*2/3]
	_ = f.b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), storage.PutOptions{})
	expectProblem(t, f.verify(t), "corrupt", key)
}

func TestMissingTablespaceArchive(t *testing.T) {
	f := newFixture(t)
	_ = f.b.Delete(t.Context(), "srv/base/20261101T000000/16385.tar.gz")
	expectProblem(t, f.verify(t), "missing", "16385.tar")
}

func TestCorruptCompressedWAL(t *testing.T) {
	f := newFixture(t)
	key := "srv/wals/0000000100000000/000000010000000000000011.zst"
	data, _ := storage.ReadAll(t.Context(), f.b, key)
	data[len(data)/2] ^= 0xFF
	_ = f.b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), storage.PutOptions{})
	expectProblem(t, f.verify(t), "corrupt", key)
}

func TestSegmentUnderWrongName(t *testing.T) {
	f := newFixture(t)
	wrong := segment(wal.Segment{TLI: 1, Seg: 0x99}, 1)
	f.archive(t, "000000010000000000000099", wrong)
	// Store segment 0x99's bytes as 0x13.
	key := "srv/wals/0000000100000000/000000010000000000000013.zst"
	src, _ := storage.ReadAll(t.Context(), f.b, "srv/wals/0000000100000000/000000010000000000000099.zst")
	_ = f.b.Put(t.Context(), key, bytes.NewReader(src), int64(len(src)), storage.PutOptions{})
	_ = f.b.Delete(t.Context(), "srv/wals/0000000100000000/000000010000000000000099.zst")
	expectProblem(t, f.verify(t), "corrupt", key)
}
