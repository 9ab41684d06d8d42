package compress

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateGolden = flag.Bool("update-golden", false,
	"regenerate testdata/golden with python3 and testdata/fuzz/FuzzReader seeds")

// goldenSHA256 is the checksum of goldenData(): if the generator ever
// changes, the golden files no longer match it and must be regenerated.
const goldenSHA256 = "05a948936a0973d1ab227555962688a0974c3ad69324761da5e639364dd5bfe7"

// goldenFiles were written by Python with the calls barman uses (see
// pyScript), so that reading what barman writes stays tested on machines
// without Python. "multi" files hold two gzip members, bzip2/xz streams,
// zstd frames or LZ4 frames; "chunked" snappy comes from
// SnappyCompressor.add_chunk (the tar upload path).
var goldenFiles = []struct {
	file    string
	algo    Algorithm
	level   int
	variant string
}{
	{"python.gz", Gzip, 6, ""},
	{"python-multi.gz", Gzip, 6, "multi"},
	{"python.bz2", Bzip2, 5, ""},
	{"python-multi.bz2", Bzip2, 5, "multi"},
	{"python.xz", XZ, 3, ""},
	{"python-crc32.xz", XZ, 3, "crc32"},
	{"python-multi.xz", XZ, 3, "multi"},
	{"python.snappy", Snappy, 0, ""},
	{"python-chunked.snappy", Snappy, 0, "chunked"},
	{"python.zst", Zstd, 4, ""},
	{"python-multi.zst", Zstd, 4, "multi"},
	{"python.lz4", LZ4, 6, ""},
	{"python-multi.lz4", LZ4, 6, "multi"},
}

func TestGolden(t *testing.T) {
	data := goldenData()
	if *updateGolden {
		writeGolden(t, data)
	}
	if got := sha256Hex(data); got != goldenSHA256 {
		t.Fatalf("goldenData() changed (sha256 %s): regenerate with go test . -run TestGolden -args -update-golden", got)
	}
	for _, g := range goldenFiles {
		t.Run(g.file, func(t *testing.T) {
			t.Parallel()
			c, err := os.ReadFile(filepath.Join("testdata", "golden", g.file))
			if err != nil {
				t.Fatal(err)
			}
			out, err := decompressBytes(g.algo, c)
			if err != nil {
				t.Fatalf("decompress: %v", err)
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("got %d bytes, want %d identical bytes", len(out), len(data))
			}
			// Every cut is an error, except where a stream may validly end:
			// between two members/frames/streams of a "multi" file, or
			// between two snappy chunks. Then the output is a prefix.
			unitEnds := g.variant == "multi" || g.algo == Snappy
			for _, n := range cutPoints(len(c), testing.Short()) {
				out, err := decompressBytes(g.algo, c[:n])
				if err != nil {
					continue
				}
				if !unitEnds || !bytes.HasPrefix(data, out) {
					t.Fatalf("cut at %d of %d: no error, %d bytes", n, len(c), len(out))
				}
			}
		})
	}
}

// writeGolden has Python write the golden files and writes the fuzz seeds.
func writeGolden(t *testing.T, data []byte) {
	py := python(t)
	dir := filepath.Join("testdata", "golden")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "input")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	jobs := make([]pyJob, len(goldenFiles))
	for i, g := range goldenFiles {
		jobs[i] = pyJob{Op: "compress", Algo: string(g.algo), Level: g.level, Variant: g.variant,
			Src: src, Dst: filepath.Join(dir, g.file)}
	}
	for i, r := range runPython(t, py, jobs) {
		if !r.OK {
			t.Fatalf("%s: %s", goldenFiles[i].file, r.Error)
		}
	}
	writeFuzzSeeds(t)
}

// writeFuzzSeeds writes testdata/fuzz/FuzzReader: for each algorithm a
// small valid stream from this package, the head of a Python golden file,
// and a stream with a flipped byte.
func writeFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, sel byte, data []byte) {
		body := fmt.Sprintf("go test fuzz v1\nbyte(%q)\n[]byte(%q)\n", sel, data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	small := walData(3000, 21)
	for i, a := range fuzzAlgos {
		c := compressBytes(t, a, LevelLow, small)
		write(fmt.Sprintf("%s-valid", a), byte(i), c)
		if len(c) > 20 {
			d := bytes.Clone(c)
			d[len(d)/2] ^= 0x40
			write(fmt.Sprintf("%s-flipped", a), byte(i), d)
		}
	}
	for _, g := range goldenFiles {
		c, err := os.ReadFile(filepath.Join("testdata", "golden", g.file))
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range fuzzAlgos {
			if a == g.algo {
				write(g.file+"-head", byte(i), c[:min(len(c), 600)])
			}
		}
	}
}
