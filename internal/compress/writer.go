package compress

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dsnet/compress/bzip2"
	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// errWriterClosed is returned by Write after Close.
var errWriterClosed = errors.New("write to closed compressor")

// NewWriter returns a writer that compresses into w with algorithm a at
// level lvl, as barman-cloud-wal-archive does: one gzip member, one bzip2
// stream, one xz stream, one snappy framed stream, one zstd frame or one
// LZ4 frame. Close flushes and finishes the stream; it does not close w.
// For None the bytes pass through unchanged.
func NewWriter(w io.Writer, a Algorithm, lvl Level) (io.WriteCloser, error) {
	n := lvl.Resolve(a)
	switch a {
	case None:
		return nopWriteCloser{w}, nil
	case Gzip:
		return newGzipWriter(w, n)
	case Bzip2:
		return newBzip2Writer(w, n)
	case XZ:
		return newXZWriter(w, n)
	case Snappy:
		return newSnappyWriter(w), nil
	case Zstd:
		return newZstdWriter(w, n)
	case LZ4:
		return newLZ4Writer(w, n)
	}
	return nil, fmt.Errorf("create compressor: unknown algorithm %q", string(a))
}

// NewTarWriter returns a writer for a base-backup archive stream. gzip and
// bzip2 use level 9, as Python tarfile's "w|gz" and "w|bz2" modes do; the
// other algorithms use their medium level. Level-9 gzip is about ten times
// slower than level 6 (as with zlib): NewTarWriterLevel chooses another.
func NewTarWriter(w io.Writer, a Algorithm) (io.WriteCloser, error) {
	return NewTarWriterLevel(w, a, tarDefaultLevel(a))
}

// NewTarWriterLevel is NewTarWriter with an explicit level. The output
// format is the same as NewWriter's; the archive stream is never split into
// several frames or members.
func NewTarWriterLevel(w io.Writer, a Algorithm, lvl Level) (io.WriteCloser, error) {
	return NewWriter(w, a, lvl)
}

// tarDefaultLevel is the level Python tarfile stream modes use.
func tarDefaultLevel(a Algorithm) Level {
	if a == Gzip || a == Bzip2 {
		return LevelNumber(9)
	}
	return LevelMedium
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// pooledWriter wraps a library compressor taken from a pool. Close finishes
// the stream and, when that succeeded, returns the compressor to its pool.
type pooledWriter struct {
	algo    Algorithm
	enc     io.WriteCloser
	release func() // resets enc away from the caller's writer and pools it
	err     error
	closed  bool
}

func (p *pooledWriter) Write(b []byte) (int, error) {
	if p.closed {
		return 0, fmt.Errorf("compress %s: %w", p.algo, errWriterClosed)
	}
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.enc.Write(b)
	if err != nil {
		p.err = fmt.Errorf("compress %s: %w", p.algo, err)
		return n, p.err
	}
	return n, nil
}

func (p *pooledWriter) Close() error {
	if p.closed {
		return p.err
	}
	p.closed = true
	err := p.enc.Close()
	if err != nil {
		if p.err == nil {
			p.err = fmt.Errorf("finish %s stream: %w", p.algo, err)
		}
		p.enc = nil
		return p.err
	}
	if p.err == nil && p.release != nil {
		p.release()
	}
	p.enc = nil
	return p.err
}

// Encoder pools, one per library level. A pooled encoder is reset onto
// io.Discard so it keeps no reference to the caller's writer.
var (
	gzipPools   [10]sync.Pool // index: gzip level 1..9
	bzip2Pools  [10]sync.Pool // index: bzip2 level 1..9
	zstdPools   [5]sync.Pool  // index: zstd.EncoderLevel 1..4
	lz4Pools    [5]sync.Pool  // index: 0 fast, 1..4 pierrec HC levels
	snappyPool  sync.Pool
	discardSink = io.Discard
)

func newGzipWriter(w io.Writer, level int) (io.WriteCloser, error) {
	pool := &gzipPools[level]
	zw, _ := pool.Get().(*gzip.Writer)
	if zw == nil {
		var err error
		if zw, err = gzip.NewWriterLevel(w, level); err != nil {
			return nil, fmt.Errorf("create gzip compressor: %w", err)
		}
	} else {
		zw.Reset(w)
	}
	return &pooledWriter{algo: Gzip, enc: zw, release: func() {
		zw.Reset(discardSink)
		pool.Put(zw)
	}}, nil
}

func newBzip2Writer(w io.Writer, level int) (io.WriteCloser, error) {
	pool := &bzip2Pools[level]
	zw, _ := pool.Get().(*bzip2.Writer)
	if zw == nil {
		var err error
		if zw, err = bzip2.NewWriter(w, &bzip2.WriterConfig{Level: level}); err != nil {
			return nil, fmt.Errorf("create bzip2 compressor: %w", err)
		}
	} else if err := zw.Reset(w); err != nil {
		return nil, fmt.Errorf("reset bzip2 compressor: %w", err)
	}
	return &pooledWriter{algo: Bzip2, enc: zw, release: func() {
		if zw.Reset(discardSink) == nil {
			pool.Put(zw)
		}
	}}, nil
}

// xzDictCap is the LZMA2 dictionary size of liblzma's presets 0..9, which
// Python's lzma.compress(preset=n) uses.
var xzDictCap = [10]int{256 << 10, 1 << 20, 2 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20}

// newXZWriter writes an xz container with one LZMA2 block and a CRC64
// check, the format of Python's lzma.compress. ulikunitz/xz has no
// presets: the level selects liblzma's dictionary size for that preset.
// The matcher is always the hash table: ulikunitz/xz's binary-tree matcher
// is orders of magnitude slower on runs of zeros and has produced streams
// that do not decode. ulikunitz/xz writers cannot be reset, so they are not
// pooled.
func newXZWriter(w io.Writer, level int) (io.WriteCloser, error) {
	cfg := xz.WriterConfig{DictCap: xzDictCap[level], CheckSum: xz.CRC64, Matcher: lzma.HashTable4}
	zw, err := cfg.NewWriter(w)
	if err != nil {
		return nil, fmt.Errorf("create xz compressor: %w", err)
	}
	return &pooledWriter{algo: XZ, enc: zw}, nil
}

// newSnappyWriter writes the snappy framing format (stream identifier
// chunk, then CRC32C-checked chunks of at most 64 KiB), which is what
// python-snappy's stream_compress writes. Empty input gives empty output,
// as with python-snappy.
func newSnappyWriter(w io.Writer) io.WriteCloser {
	sw, _ := snappyPool.Get().(*snappy.Writer)
	if sw == nil {
		sw = snappy.NewBufferedWriter(w)
	} else {
		sw.Reset(w)
	}
	return &pooledWriter{algo: Snappy, enc: sw, release: func() {
		sw.Reset(discardSink)
		snappyPool.Put(sw)
	}}
}

// zstdEncoderLevel maps a zstd level (-22..22) onto klauspost's four
// encoder levels: negative levels (zstd's fast modes) and 1..2 are
// SpeedFastest, 0 (zstd's "default", i.e. 3) and 3..5 SpeedDefault, 6..9
// SpeedBetterCompression and 10..22 SpeedBestCompression. This is
// zstd.EncoderLevelFromZstd except for 0.
func zstdEncoderLevel(level int) zstd.EncoderLevel {
	if level == 0 {
		return zstd.SpeedDefault
	}
	return zstd.EncoderLevelFromZstd(level)
}

// newZstdWriter writes exactly one zstd frame with a content checksum:
// python-zstandard's stream_reader, which barman uses, reads only the first
// frame. Concurrency 1 keeps the encoder synchronous; zero frames makes
// empty input a valid empty frame, as python-zstandard's copy_stream does.
func newZstdWriter(w io.Writer, level int) (io.WriteCloser, error) {
	el := zstdEncoderLevel(level)
	pool := &zstdPools[el]
	enc, _ := pool.Get().(*zstd.Encoder)
	if enc == nil {
		var err error
		enc, err = zstd.NewWriter(w,
			zstd.WithEncoderLevel(el),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(true))
		if err != nil {
			return nil, fmt.Errorf("create zstd compressor: %w", err)
		}
	} else {
		enc.Reset(w)
	}
	return &pooledWriter{algo: Zstd, enc: enc, release: func() {
		enc.Reset(discardSink)
		pool.Put(enc)
	}}, nil
}

// lz4Level maps an lz4 level (0..16) onto pierrec/lz4 levels and returns
// the pool index. Below 3 is the fast compressor, as in liblz4. liblz4's
// HC levels 3..9 search 4..256 candidates per position; pierrec's Level1
// already searches 512, so 3..9 map to Level1, and 10, 11 and 12..16
// (liblz4 caps at 12) to Level2, Level3 and Level4. Deeper pierrec levels
// were measured to gain under 0.1% of size for 30% more time, and Level1
// itself costs about 14 times the fast compressor for 15% smaller output.
func lz4Level(level int) (lz4.CompressionLevel, int) {
	if level < 3 {
		return lz4.Fast, 0
	}
	i := min(max(level-8, 1), 4)
	return lz4.Level1 << (i - 1), i
}

// newLZ4Writer writes one LZ4 frame (magic 04 22 4d 18) with 4 MiB
// independent blocks and a content checksum; lz4.frame in Python reads it.
func newLZ4Writer(w io.Writer, level int) (io.WriteCloser, error) {
	cl, idx := lz4Level(level)
	pool := &lz4Pools[idx]
	zw, _ := pool.Get().(*lz4.Writer)
	if zw == nil {
		zw = lz4.NewWriter(w)
		if err := zw.Apply(
			lz4.CompressionLevelOption(cl),
			lz4.ChecksumOption(true),
			lz4.ConcurrencyOption(1),
		); err != nil {
			return nil, fmt.Errorf("create lz4 compressor: %w", err)
		}
	} else {
		zw.Reset(w)
	}
	return &pooledWriter{algo: LZ4, enc: zw, release: func() {
		zw.Reset(discardSink)
		pool.Put(zw)
	}}, nil
}
