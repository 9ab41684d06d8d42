package compress

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dsnet/compress/bzip2"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// zstdMaxWindow is libzstd's default decoder window limit
// (ZSTD_WINDOWLOG_LIMIT_DEFAULT = 27), which python-zstandard's
// ZstdDecompressor applies too: frames needing more are rejected by both.
const zstdMaxWindow = 1 << 27

// errReaderClosed is returned by Read after Close.
var errReaderClosed = errors.New("read from closed decompressor")

// NewReader returns a reader that decompresses r with algorithm a. It
// accepts everything barman's Python writers produce and more: multi-
// member gzip, concatenated bzip2, xz and LZ4 streams, several zstd frames.
//
// Truncated or corrupted input ends in an error, never in a silent short
// read, with these limits of the formats: a stream cut exactly between two
// gzip members, bzip2/xz/LZ4 streams or zstd frames reads as the shorter
// complete stream (this package writes only one), and so does a snappy
// stream cut between two chunks, since the framing format has no end
// marker (python-snappy reads both the same way). Empty input is an error
// except for None and Snappy: every other writer emits at least a header,
// while python-snappy and this package write nothing for empty input.
// Bytes after the last complete stream are an error.
//
// Memory is bounded by the stream headers: zstd windows up to 128 MiB (the
// limit python-zstandard applies) and xz dictionaries up to 256 MiB (four
// times liblzma's largest preset) are accepted; larger ones are rejected.
//
// The first Read does the first I/O on r. Close releases pooled decoder
// state; it does not close r.
func NewReader(r io.Reader, a Algorithm) (io.ReadCloser, error) {
	var open func(src io.Reader) (io.Reader, func(), error)
	switch a {
	case None:
		return io.NopCloser(r), nil
	case Gzip:
		open = openGzip
	case Bzip2:
		open = openBzip2
	case XZ:
		open = openXZ
	case Snappy:
		open = openSnappy
	case Zstd:
		open = openZstd
	case LZ4:
		open = openLZ4
	default:
		return nil, fmt.Errorf("create decompressor: unknown algorithm %q", string(a))
	}
	return &decompReader{algo: a, src: countingReader{r: r}, open: open}, nil
}

// decompReader opens its decoder lazily and turns a decoder's io.EOF on
// empty input into io.ErrUnexpectedEOF.
type decompReader struct {
	algo    Algorithm
	src     countingReader
	open    func(src io.Reader) (io.Reader, func(), error)
	dec     io.Reader
	release func()
	err     error
	closed  bool
}

func (d *decompReader) Read(p []byte) (int, error) {
	if d.closed {
		return 0, fmt.Errorf("decompress %s: %w", d.algo, errReaderClosed)
	}
	if d.err != nil {
		return 0, d.err
	}
	if d.dec == nil {
		dec, release, err := d.open(&d.src)
		if err != nil {
			d.err = d.wrap(err)
			return 0, d.err
		}
		d.dec, d.release = dec, release
	}
	n, err := d.dec.Read(p)
	if err != nil {
		d.err = d.wrap(err)
		return n, d.err
	}
	return n, nil
}

// wrap adds context to a decoder error and keeps io.EOF bare, except on
// empty input where it becomes io.ErrUnexpectedEOF.
func (d *decompReader) wrap(err error) error {
	if errors.Is(err, io.EOF) {
		if d.src.n == 0 && d.algo != Snappy {
			return fmt.Errorf("decompress %s: empty input: %w", d.algo, io.ErrUnexpectedEOF)
		}
		return io.EOF
	}
	return fmt.Errorf("decompress %s: %w", d.algo, err)
}

func (d *decompReader) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if d.release != nil {
		d.release()
	}
	d.dec, d.release = nil, nil
	return nil
}

// countingReader counts the bytes the decoder has taken from the source.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// emptySource parks pooled decoders so they keep no caller reader.
type emptySource struct{}

func (emptySource) Read([]byte) (int, error) { return 0, io.EOF }

var (
	gzipReaderPool   sync.Pool
	bzip2ReaderPool  sync.Pool
	snappyReaderPool sync.Pool
	zstdReaderPool   sync.Pool
	lz4ReaderPool    sync.Pool
)

// openGzip reads gzip members until the end of input (multistream), like
// Python's gzip.GzipFile; CRC32 and size trailers are checked.
func openGzip(src io.Reader) (io.Reader, func(), error) {
	zr, _ := gzipReaderPool.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(src)
	} else {
		err = zr.Reset(src)
	}
	if err != nil {
		return nil, nil, err
	}
	zr.Multistream(true)
	return zr, func() {
		_ = zr.Close()
		gzipReaderPool.Put(zr)
	}, nil
}

// openBzip2 reads concatenated bzip2 streams, checking block and stream
// CRCs.
func openBzip2(src io.Reader) (io.Reader, func(), error) {
	zr, _ := bzip2ReaderPool.Get().(*bzip2.Reader)
	if zr == nil {
		var err error
		if zr, err = bzip2.NewReader(src, nil); err != nil {
			return nil, nil, err
		}
	} else if err := zr.Reset(src); err != nil {
		return nil, nil, err
	}
	return zr, func() {
		if zr.Reset(emptySource{}) == nil {
			bzip2ReaderPool.Put(zr)
		}
	}, nil
}

// openSnappy reads the snappy framing format with snappyReader: the stream
// identifier chunk must come first and every data chunk's masked CRC32C is
// checked.
func openSnappy(src io.Reader) (io.Reader, func(), error) {
	sr, _ := snappyReaderPool.Get().(*snappyReader)
	if sr == nil {
		sr = newSnappyReader()
	}
	sr.reset(src)
	return sr, func() {
		sr.reset(nil)
		snappyReaderPool.Put(sr)
	}, nil
}

// openZstd reads every zstd frame until the end of input and checks frame
// checksums when present. Windows above libzstd's default limit are
// rejected, as python-zstandard does.
func openZstd(src io.Reader) (io.Reader, func(), error) {
	dec, _ := zstdReaderPool.Get().(*zstd.Decoder)
	var err error
	if dec == nil {
		dec, err = zstd.NewReader(src,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderLowmem(true))
	} else {
		err = dec.Reset(src)
	}
	if err != nil {
		return nil, nil, err
	}
	return dec, func() {
		if dec.Reset(nil) == nil {
			zstdReaderPool.Put(dec)
		}
	}, nil
}

// openLZ4 reads concatenated LZ4 frames, checking block and content
// checksums when the frame has them.
func openLZ4(src io.Reader) (io.Reader, func(), error) {
	zr, _ := lz4ReaderPool.Get().(*lz4.Reader)
	if zr == nil {
		zr = lz4.NewReader(src)
	} else {
		zr.Reset(src)
	}
	return zr, func() {
		zr.Reset(emptySource{})
		lz4ReaderPool.Put(zr)
	}, nil
}
