package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// TestFlippedByte flips one byte at every position of a compressed stream
// (XOR 0x01, 0x80 or 0xff in turn) and requires the reader to either fail
// or return exactly the original data: corruption must never come out as
// silently wrong data.
//
// Flips that decode to the original data are harmless redundancy in the
// formats, measured when this test was written:
//   - gzip: header bytes 3..9 (FTEXT flag, MTIME, XFL, OS) are outside the
//     CRC32, as the header CRC is optional and not written;
//   - bzip2: the block-size digit of "BZh5" when the blocks still fit, and
//     a few bits of the Huffman and selector encoding that have no effect;
//   - xz: the LZMA2 chunk's packed-size field, as the decoder stops at the
//     unpacked size and the chunk really ends there;
//   - snappy: offsets of copies inside runs of zeros, which copy zeros from
//     elsewhere;
//   - zstd: a few bits in the block and sequence headers with no effect.
//
// The one flip that would drop data silently in the snappy framing format
// (a data chunk's type turned into a skippable type, e.g. 0x00 -> 0x80) is
// rejected by this package's stricter snappy reader.
func TestFlippedByte(t *testing.T) {
	in := walData(12<<10, 9)
	stride := 1
	if testing.Short() {
		stride = 7
	}
	masks := []byte{0x01, 0x80, 0xff}
	for _, a := range Algorithms() {
		t.Run(string(a), func(t *testing.T) {
			t.Parallel()
			c := compressBytes(t, a, LevelLow, in)
			var tried, failed int
			for pos := 0; pos < len(c); pos += stride {
				d := bytes.Clone(c)
				d[pos] ^= masks[pos%len(masks)]
				out, err := decompressBytes(a, d)
				tried++
				if err != nil {
					failed++
					continue
				}
				if !bytes.Equal(out, in) {
					t.Errorf("flip 0x%02x at %d of %d: no error, but %d bytes of wrong data",
						masks[pos%len(masks)], pos, len(c), len(out))
				}
			}
			t.Logf("%d of %d flips detected, the rest decode to the original data", failed, tried)
			if failed < tried*9/10 {
				t.Errorf("only %d of %d flips detected", failed, tried)
			}
		})
	}
}

// TestTruncated cuts compressed streams at many lengths: every cut must be
// an error (io.ErrUnexpectedEOF or a format error), never a short read
// ending in io.EOF. The exception is snappy cut exactly between two data
// chunks: the framing format has no end marker, so that stream is a valid
// shorter stream (python-snappy reads it the same way); the test checks
// that it then returns exactly the data of the complete chunks.
func TestTruncated(t *testing.T) {
	type stream struct {
		algo     Algorithm
		in, data []byte
	}
	streams := map[string]stream{}
	small := walData(64<<10, 10)
	for _, a := range Algorithms() {
		in := small
		if a == Snappy {
			in = walData(400<<10, 10) // several 64 KiB chunks
		}
		streams[string(a)] = stream{a, in, compressBytes(t, a, LevelLow, in)}
	}
	// Python's lz4.frame writes linked 64 KiB blocks without a content
	// checksum: cuts at block boundaries must still be caught.
	big := walData(400<<10, 10)
	var lz4buf bytes.Buffer
	lw := lz4.NewWriter(&lz4buf)
	if err := lw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := lw.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	streams["lz4-64k-nochecksum"] = stream{LZ4, big, lz4buf.Bytes()}

	for name, s := range streams {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := s.data
			var boundaries map[int]int
			cuts := cutPoints(len(c), testing.Short())
			switch {
			case s.algo == Snappy:
				boundaries = snappyBoundaries(t, c)
				boundaries[0] = 0 // empty input is the empty stream
				for n := range boundaries {
					cuts = append(cuts, n)
				}
			case s.algo == LZ4:
				cuts = append(cuts, lz4Boundaries(t, c)...)
			}
			for _, n := range cuts {
				out, err := decompressBytes(s.algo, c[:n])
				if want, ok := boundaries[n]; ok {
					if err != nil || !bytes.Equal(out, s.in[:want]) {
						t.Errorf("snappy cut at chunk boundary %d: %d bytes, %v; want the first %d bytes", n, len(out), err, want)
					}
					continue
				}
				if err == nil {
					t.Errorf("cut at %d of %d: no error, %d of %d bytes", n, len(c), len(out), len(s.in))
				}
			}
		})
	}
}

// cutPoints returns every length up to 512 bytes and in the last 256
// bytes, and a sample in between.
func cutPoints(size int, short bool) []int {
	step := 61
	if short {
		step = 509
	}
	var pts []int
	for n := 0; n < size; n++ {
		if n < 512 || n >= size-256 || n%step == 0 {
			pts = append(pts, n)
		}
	}
	return pts
}

// snappyBoundaries maps each offset where a snappy data chunk ends (except
// the last) to the decoded length up to that point. A cut after only the
// stream identifier is not a boundary: that is an error for this reader.
func snappyBoundaries(t *testing.T, c []byte) map[int]int {
	t.Helper()
	b := map[int]int{}
	pos, decoded := 0, 0
	for pos < len(c) {
		typ := c[pos]
		size := int(c[pos+1]) | int(c[pos+2])<<8 | int(c[pos+3])<<16
		body := c[pos+4 : pos+4+size]
		pos += 4 + size
		switch typ {
		case snappyChunkCompressed:
			n, err := decodedLen(body[4:])
			if err != nil {
				t.Fatal(err)
			}
			decoded += n
		case snappyChunkUncompressed:
			decoded += size - 4
		}
		if typ != snappyChunkStreamID && pos < len(c) {
			b[pos] = decoded
		}
	}
	return b
}

// lz4Boundaries returns the offsets where the blocks of an LZ4 frame
// without block checksums end, the end mark excluded.
func lz4Boundaries(t *testing.T, c []byte) []int {
	t.Helper()
	flg := c[4]
	pos := 7 // magic, FLG, BD, HC
	if flg&0x08 != 0 {
		pos += 8 // content size
	}
	var b []int
	for {
		size := int(binary.LittleEndian.Uint32(c[pos:]) &^ (1 << 31))
		if size == 0 {
			return b
		}
		pos += 4 + size
		if flg&0x10 != 0 {
			pos += 4 // block checksum
		}
		b = append(b, pos)
	}
}

// decodedLen reads the varint length prefix of a snappy block.
func decodedLen(block []byte) (int, error) {
	v, n := binary.Uvarint(block)
	if n <= 0 {
		return 0, errors.New("bad snappy block length")
	}
	return int(v), nil
}

// TestTrailingGarbage: bytes after a complete stream are an error (Python
// ignores trailing garbage for bzip2 and xz; being strict here only
// rejects objects barman never writes).
func TestTrailingGarbage(t *testing.T) {
	in := walData(64<<10, 16)
	for _, a := range Algorithms() {
		c := append(compressBytes(t, a, LevelLow, in), "garbage!"...)
		if _, err := decompressBytes(a, c); err == nil {
			t.Errorf("%s: trailing garbage accepted", a)
		}
	}
}

// TestXZGuards covers the xz checks this package adds around ulikunitz/xz:
// the dictionary bound and the end-of-stream verification.
func TestXZGuards(t *testing.T) {
	c := compressBytes(t, XZ, LevelLow, walData(32<<10, 17))
	// Block header: size byte at 12, flags at 13, then the LZMA2 filter
	// (0x21, 0x01, dict byte) and the header CRC32.
	if c[14] != 0x21 || c[15] != 0x01 {
		t.Fatalf("unexpected xz block header % x", c[12:24])
	}
	huge := bytes.Clone(c)
	huge[16] = 40 // 4 GiB - 1
	if _, err := decompressBytes(XZ, huge); err == nil {
		t.Error("xz stream asking for a 4 GiB dictionary was accepted")
	}
	dict, ok := xzBlockDict(c[12:24])
	if !ok || dict != 1<<20 {
		t.Errorf("xzBlockDict = %d, %v; want 1 MiB (level low)", dict, ok)
	}
	// Stream padding after the footer is valid in multiples of 4 bytes.
	if out, err := decompressBytes(XZ, append(bytes.Clone(c), 0, 0, 0, 0)); err != nil || len(out) != 32<<10 {
		t.Errorf("xz with 4 bytes of stream padding: %d bytes, %v", len(out), err)
	}
	if _, err := decompressBytes(XZ, append(bytes.Clone(c), 0, 0)); err == nil {
		t.Error("xz with 2 bytes of stream padding accepted")
	}
	// Two concatenated streams.
	two := append(bytes.Clone(c), c...)
	if out, err := decompressBytes(XZ, two); err != nil || len(out) != 64<<10 {
		t.Errorf("two xz streams: %d bytes, %v", len(out), err)
	}
}

// TestSnappyStrict covers the chunk types the strict snappy reader refuses.
func TestSnappyStrict(t *testing.T) {
	c := compressBytes(t, Snappy, LevelMedium, []byte("hello, world"))
	for name, d := range map[string][]byte{
		"no identifier":   c[10:],
		"only identifier": c[:10],
		"padding chunk":   append(append(bytes.Clone(c[:10]), 0xfe, 1, 0, 0, 0), c[10:]...),
		"skippable":       append(append(bytes.Clone(c[:10]), 0x80, 0, 0, 0), c[10:]...),
		"reserved":        append(append(bytes.Clone(c[:10]), 0x02, 0, 0, 0), c[10:]...),
		"bad identifier":  append([]byte{0xff, 6, 0, 0, 's', 'N', 'a', 'P', 'p', 'X'}, c[10:]...),
	} {
		if _, err := decompressBytes(Snappy, d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A second stream identifier (concatenated streams) is fine.
	out, err := decompressBytes(Snappy, append(bytes.Clone(c), c...))
	if err != nil || string(out) != "hello, worldhello, world" {
		t.Errorf("concatenated snappy streams: %q, %v", out, err)
	}
}
