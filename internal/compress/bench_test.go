package compress

import (
	"bytes"
	"io"
	"sync"
	"testing"
)

var (
	benchOnce sync.Once
	benchWAL  []byte
)

// benchSegment is one 16 MiB WAL-like segment, built once per test binary.
func benchSegment() []byte {
	benchOnce.Do(func() { benchWAL = walData(16<<20, 99) })
	return benchWAL
}

var segCompressed sync.Map // Algorithm -> []byte

// compressedSegment is benchSegment compressed at the medium level, built
// once per algorithm and test binary.
func compressedSegment(t testing.TB, a Algorithm) []byte {
	if c, ok := segCompressed.Load(a); ok {
		return c.([]byte)
	}
	c := compressBytes(t, a, LevelMedium, benchSegment())
	segCompressed.Store(a, c)
	return c
}

// BenchmarkWriter compresses a 16 MiB segment at the medium (default)
// level, the barman-cloud-wal-archive hot path. MB/s is input bytes.
func BenchmarkWriter(b *testing.B) {
	in := benchSegment()
	cases := []struct {
		name string
		algo Algorithm
		lvl  Level
		tar  bool
	}{
		{"gzip", Gzip, LevelMedium, false},
		{"bzip2", Bzip2, LevelMedium, false},
		{"xz", XZ, LevelMedium, false},
		{"snappy", Snappy, LevelMedium, false},
		{"zstd", Zstd, LevelMedium, false},
		{"lz4", LZ4, LevelMedium, false},
		{"gzip-low", Gzip, LevelLow, false},
		{"zstd-low", Zstd, LevelLow, false},
		{"lz4-low", LZ4, LevelLow, false},
		{"tar-gzip9", Gzip, Level{}, true},
		{"tar-bzip2-9", Bzip2, Level{}, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var buf bytes.Buffer
			buf.Grow(len(in))
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				buf.Reset()
				var w io.WriteCloser
				var err error
				if c.tar {
					w, err = NewTarWriter(&buf, c.algo)
				} else {
					w, err = NewWriter(&buf, c.algo, c.lvl)
				}
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(in); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(in))/float64(buf.Len()), "ratio")
		})
	}
}

// BenchmarkReader decompresses a 16 MiB segment, the wal-restore path.
func BenchmarkReader(b *testing.B) {
	in := benchSegment()
	for _, a := range Algorithms() {
		b.Run(string(a), func(b *testing.B) {
			c := compressedSegment(b, a)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r, err := NewReader(bytes.NewReader(c), a)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
		})
	}
}
