package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
)

var magics = map[Algorithm][]byte{
	Gzip:   {0x1f, 0x8b, 0x08},
	Bzip2:  []byte("BZh"),
	XZ:     {0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00},
	Snappy: {0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59},
	Zstd:   {0x28, 0xb5, 0x2f, 0xfd},
	LZ4:    {0x04, 0x22, 0x4d, 0x18},
}

// levelsFor returns the level classes worth testing for a: the named
// classes and the clamped extremes.
func levelsFor(a Algorithm) []Level {
	ls := []Level{LevelLow, LevelMedium, LevelHigh, LevelNumber(-100), LevelNumber(100)}
	switch a {
	case Zstd:
		ls = append(ls, LevelNumber(-5), LevelNumber(0), LevelNumber(3), LevelNumber(6), LevelNumber(15))
	case LZ4:
		ls = append(ls, LevelNumber(2), LevelNumber(3), LevelNumber(9), LevelNumber(12))
	case XZ:
		ls = append(ls, LevelNumber(4), LevelNumber(9))
	}
	return ls
}

func TestRoundTrip(t *testing.T) {
	inputs := map[string][]byte{
		"empty":   nil,
		"1byte":   {0x42},
		"zeros":   make([]byte, 300<<10),
		"wal300k": walData(300<<10, 1),
	}
	for _, a := range append([]Algorithm{None}, Algorithms()...) {
		for _, lvl := range levelsFor(a) {
			for name, in := range inputs {
				t.Run(fmt.Sprintf("%s/%s/%s", a, lvl, name), func(t *testing.T) {
					t.Parallel()
					c := compressBytes(t, a, lvl, in)
					if m := magics[a]; len(in) > 0 && !bytes.HasPrefix(c, m) {
						t.Fatalf("output starts % x, want magic % x", c[:min(len(c), 12)], m)
					}
					if a == Zstd {
						checkOneZstdFrame(t, c)
					}
					out, err := decompressBytes(a, c)
					if err != nil {
						t.Fatalf("decompress: %v", err)
					}
					if !bytes.Equal(out, in) {
						t.Fatalf("round trip changed the data: %d bytes in, %d out", len(in), len(out))
					}
				})
			}
		}
	}
}

// TestRoundTripSegment round-trips a full 16 MiB WAL segment written in
// small pieces, as io.Copy from a file does.
func TestRoundTripSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB round trips are slow")
	}
	in := benchSegment()
	for _, a := range Algorithms() {
		t.Run(string(a), func(t *testing.T) {
			// Written in 32 KiB pieces, as io.Copy from a file does.
			var buf bytes.Buffer
			w, err := NewWriter(&buf, a, LevelMedium)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.CopyBuffer(w, bytes.NewReader(in), make([]byte, 32<<10)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			// The encoders are deterministic: one big Write gives the same bytes.
			if c := compressedSegment(t, a); !bytes.Equal(c, buf.Bytes()) {
				t.Errorf("%s: output depends on write sizes", a)
			}
			t.Logf("%s: %d -> %d bytes (%.2f:1)", a, len(in), buf.Len(), float64(len(in))/float64(buf.Len()))
			if a == Zstd {
				checkOneZstdFrame(t, buf.Bytes())
			}
			out, err := decompressBytes(a, buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, in) {
				t.Fatal("round trip changed the data")
			}
		})
	}
}

func TestTarWriter(t *testing.T) {
	in := walData(200<<10, 3)
	for _, a := range append([]Algorithm{None}, Algorithms()...) {
		var buf bytes.Buffer
		w, err := NewTarWriter(&buf, a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(in); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		out, err := decompressBytes(a, buf.Bytes())
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("%s: tar stream round trip: %v", a, err)
		}
		// gzip and bzip2 default to level 9, like Python tarfile.
		if a == Gzip || a == Bzip2 {
			if want := compressBytes(t, a, LevelNumber(9), in); !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s: NewTarWriter output differs from level 9", a)
			}
		}
	}
	if _, err := NewTarWriterLevel(io.Discard, Gzip, LevelLow); err != nil {
		t.Fatal(err)
	}
}

// checkOneZstdFrame walks the zstd frame structure and fails unless data
// is exactly one frame, with a content checksum.
func checkOneZstdFrame(t *testing.T, data []byte) {
	t.Helper()
	if len(data) < 6 || binary.LittleEndian.Uint32(data) != 0xFD2FB528 {
		t.Fatalf("not a zstd frame: % x", data[:min(len(data), 8)])
	}
	fhd := data[4]
	pos := 5
	single := fhd&0x20 != 0
	if !single {
		pos++ // window descriptor
	}
	pos += []int{0, 1, 2, 4}[fhd&0x03] // dictionary ID
	fcs := []int{0, 2, 4, 8}[fhd>>6]
	if fcs == 0 && single {
		fcs = 1
	}
	pos += fcs
	for {
		if pos+3 > len(data) {
			t.Fatalf("zstd frame truncated at block header %d", pos)
		}
		h := uint32(data[pos]) | uint32(data[pos+1])<<8 | uint32(data[pos+2])<<16
		pos += 3
		size := int(h >> 3)
		if (h>>1)&3 == 1 { // RLE block
			size = 1
		}
		pos += size
		if h&1 == 1 {
			break
		}
	}
	if fhd&0x04 == 0 {
		t.Fatal("zstd frame has no content checksum")
	}
	pos += 4
	if pos != len(data) {
		t.Fatalf("zstd output holds %d bytes after the first frame", len(data)-pos)
	}
}

func TestWriterLifecycle(t *testing.T) {
	for _, a := range append([]Algorithm{None}, Algorithms()...) {
		t.Run(a.String(), func(t *testing.T) {
			dst := &closeTracker{}
			w, err := NewWriter(dst, a, LevelMedium)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if dst.closed {
				t.Fatal("Close closed the destination")
			}
			if err := w.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if a != None {
				if _, err := w.Write([]byte("x")); err == nil {
					t.Fatal("Write after Close succeeded")
				}
			}
			out, err := decompressBytes(a, dst.Bytes())
			if err != nil || string(out) != "hello" {
				t.Fatalf("got %q, %v", out, err)
			}
		})
	}
	if _, err := NewWriter(io.Discard, "brotli", LevelMedium); err == nil {
		t.Error("NewWriter accepted an unknown algorithm")
	}
	if _, err := NewReader(bytes.NewReader(nil), "brotli"); err == nil {
		t.Error("NewReader accepted an unknown algorithm")
	}
}

type closeTracker struct {
	bytes.Buffer
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

// failWriter fails every write after the first n bytes.
type failWriter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errDisk
	}
	f.n -= len(p)
	return len(p), nil
}

// TestWriterError checks that a failing destination surfaces through
// Write or Close, and that a failed compressor is not pooled and reused.
func TestWriterError(t *testing.T) {
	in := walData(1<<20, 4)
	for _, a := range Algorithms() {
		w, err := NewWriter(&failWriter{n: 100}, a, LevelLow)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := w.Write(in)
		cerr := w.Close()
		if !errors.Is(werr, errDisk) && !errors.Is(cerr, errDisk) {
			t.Errorf("%s: write error lost: Write %v, Close %v", a, werr, cerr)
		}
		// The next writer of the same kind must be healthy.
		c := compressBytes(t, a, LevelLow, in)
		if out, err := decompressBytes(a, c); err != nil || !bytes.Equal(out, in) {
			t.Errorf("%s: writer after a failed one: %v", a, err)
		}
	}
}

func TestReaderLifecycle(t *testing.T) {
	for _, a := range Algorithms() {
		c := compressBytes(t, a, LevelMedium, []byte("hello"))
		r, err := NewReader(bytes.NewReader(c), a)
		if err != nil {
			t.Fatal(err)
		}
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(b[:]); err == nil {
			t.Errorf("%s: Read after Close succeeded", a)
		}
		if err := r.Close(); err != nil {
			t.Errorf("%s: second Close: %v", a, err)
		}
	}
}

// TestEmptyInput: empty input is an error except for None and Snappy,
// whose writers (ours and python-snappy's) write nothing for empty data.
func TestEmptyInput(t *testing.T) {
	for _, a := range append([]Algorithm{None}, Algorithms()...) {
		out, err := decompressBytes(a, nil)
		switch a {
		case None, Snappy:
			if err != nil || len(out) != 0 {
				t.Errorf("%s: empty input: %q, %v", a, out, err)
			}
		default:
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%s: empty input: got %v, want io.ErrUnexpectedEOF", a, err)
			}
		}
	}
}

// TestConcurrentUse exercises the encoder and decoder pools from many
// goroutines (meaningful under -race).
func TestConcurrentUse(t *testing.T) {
	in := walData(256<<10, 5)
	var wg sync.WaitGroup
	for i := range 24 {
		a := Algorithms()[i%len(Algorithms())]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				c, err := compressErr(a, LevelLow, in)
				if err != nil {
					t.Errorf("%s: concurrent compress: %v", a, err)
					return
				}
				out, err := decompressBytes(a, c)
				if err != nil || !bytes.Equal(out, in) {
					t.Errorf("%s: concurrent round trip: %v", a, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
