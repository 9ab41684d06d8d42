package compress

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// fuzzAlgos is indexed by the fuzz selector byte (modulo its length).
var fuzzAlgos = []Algorithm{None, Gzip, Bzip2, XZ, Snappy, Zstd, LZ4}

// fuzzMaxOut bounds how much a fuzz input may decompress to, so that
// decompression bombs keep each run (and input minimization) short.
const fuzzMaxOut = 1 << 20

// fuzzMaxWindow skips inputs whose header asks the decoder for a larger
// window or dictionary: valid up to 128 MiB (zstd) or 256 MiB (xz), but
// allocating that on every run would make fuzzing crawl.
const fuzzMaxWindow = 8 << 20

// bigWindow reports whether data's first zstd frame or xz block asks for
// more than fuzzMaxWindow.
func bigWindow(a Algorithm, data []byte) bool {
	switch a {
	case Zstd:
		var h zstd.Header
		if h.Decode(data) != nil {
			return false
		}
		return h.WindowSize > fuzzMaxWindow || (h.SingleSegment && h.FrameContentSize > fuzzMaxWindow)
	case XZ:
		if len(data) < 13 {
			return false
		}
		end := min(len(data), 12+(int(data[12])+1)*4)
		d, ok := xzBlockDict(data[12:end])
		return ok && d > fuzzMaxWindow
	}
	return false
}

// FuzzReader feeds arbitrary bytes to NewReader for every algorithm: each
// input must end in data or an error, never a panic or a hang. The seed
// corpus (testdata/fuzz/FuzzReader, written by TestGolden -update-golden)
// holds valid, truncated and corrupted streams; as a plain test only the
// seeds run.
func FuzzReader(f *testing.F) {
	for i := range fuzzAlgos {
		f.Add(byte(i), []byte{})
		f.Add(byte(i), []byte("not compressed at all"))
	}
	f.Fuzz(func(t *testing.T, sel byte, data []byte) {
		a := fuzzAlgos[int(sel)%len(fuzzAlgos)]
		if bigWindow(a, data) {
			t.Skip("window too large for fuzzing")
		}
		// A decoder stuck in a loop would otherwise show only as a hung
		// worker; the panic makes the fuzzer save the input.
		timer := time.AfterFunc(10*time.Second, func() {
			panic(fmt.Sprintf("decoding %d bytes of %s took more than 10s", len(data), a))
		})
		defer timer.Stop()
		r, err := NewReader(bytes.NewReader(data), a)
		if err != nil {
			t.Fatalf("NewReader(%s): %v", a, err)
		}
		n, err := io.Copy(io.Discard, io.LimitReader(r, fuzzMaxOut))
		if err == nil && a == None && n != int64(min(len(data), fuzzMaxOut)) {
			t.Fatalf("None returned %d of %d bytes", n, len(data))
		}
		if err := r.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}

// FuzzRoundTrip compresses arbitrary data with every algorithm at a level
// chosen by the fuzzer and checks that it decompresses unchanged.
func FuzzRoundTrip(f *testing.F) {
	f.Add(byte(0), int8(0), []byte{})
	f.Add(byte(3), int8(9), []byte("hello hello hello hello"))
	f.Add(byte(5), int8(-5), walData(5000, 1))
	f.Add(byte(6), int8(16), bytes.Repeat([]byte{0}, 70000))
	f.Fuzz(func(t *testing.T, sel byte, level int8, data []byte) {
		a := fuzzAlgos[int(sel)%len(fuzzAlgos)]
		lvl := LevelNumber(int(level))
		if a == XZ || a == Bzip2 {
			lvl = LevelLow // keep each run fast; levels only change the dictionary
		}
		c, err := compressErr(a, lvl, data)
		if err != nil {
			t.Fatalf("compress %s: %v", a, err)
		}
		out, err := decompressBytes(a, c)
		if err != nil {
			t.Fatalf("decompress %s: %v", a, err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("%s round trip changed %d bytes into %d", a, len(data), len(out))
		}
	})
}
