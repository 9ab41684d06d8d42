package compress

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz"
)

// openXZ reads concatenated xz streams and padding, checking the block
// checks (CRC32, CRC64 or SHA-256) and each index. The first block's LZMA2
// dictionary is checked against xzMaxDict before anything is allocated,
// and the end of input is checked to be the end of a stream (xzReader).
// ulikunitz/xz readers cannot be reset, so they are not pooled.
func openXZ(src io.Reader) (io.Reader, func(), error) {
	guarded, err := guardXZ(src)
	if err != nil {
		return nil, nil, err
	}
	tail := &xzTail{r: guarded}
	zr, err := xz.NewReader(tail)
	if err != nil {
		return nil, nil, err
	}
	return &xzReader{dec: zr, tail: tail}, nil, nil
}

// xzMaxDict bounds the LZMA2 dictionary an xz stream may ask for. The
// decoder allocates the whole dictionary up front, so a 60-byte stream
// could otherwise demand 1.5 GiB. liblzma's presets, which Python's
// lzma.compress uses, top out at 64 MiB; this allows four times that.
const xzMaxDict = 256 << 20

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// guardXZ peeks at the stream header and first block header of an xz
// stream and rejects an LZMA2 dictionary larger than xzMaxDict. Anything it
// cannot parse is left for the xz decoder to report. Later blocks and
// concatenated streams are not checked: they are only reached through a
// first block whose check passed.
func guardXZ(src io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(src, 4096)
	const streamHeaderLen = 12
	head, _ := br.Peek(streamHeaderLen + 1)
	if len(head) < streamHeaderLen+1 || !bytes.HasPrefix(head, xzMagic) || head[streamHeaderLen] == 0 {
		return br, nil
	}
	blockLen := (int(head[streamHeaderLen]) + 1) * 4
	blk, _ := br.Peek(streamHeaderLen + blockLen)
	if len(blk) < streamHeaderLen+blockLen {
		return br, nil
	}
	if dict, ok := xzBlockDict(blk[streamHeaderLen:]); ok && dict > xzMaxDict {
		return nil, fmt.Errorf("block asks for a %d MiB LZMA2 dictionary, more than the %d MiB allowed",
			dict>>20, xzMaxDict>>20)
	}
	return br, nil
}

// xzBlockDict returns the LZMA2 dictionary size of an xz block header
// (xz-file-format 3.1), or false when the header cannot be parsed.
func xzBlockDict(h []byte) (int64, bool) {
	if len(h) < 2 {
		return 0, false
	}
	flags := h[1]
	rest := h[2:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return 0, false
		}
		rest = rest[n:]
		return v, true
	}
	if flags&0x40 != 0 { // compressed size present
		if _, ok := next(); !ok {
			return 0, false
		}
	}
	if flags&0x80 != 0 { // uncompressed size present
		if _, ok := next(); !ok {
			return 0, false
		}
	}
	for range int(flags&0x03) + 1 {
		id, ok := next()
		if !ok {
			return 0, false
		}
		size, ok := next()
		if !ok || size > uint64(len(rest)) {
			return 0, false
		}
		props := rest[:size]
		rest = rest[size:]
		if id == 0x21 && size == 1 {
			b := props[0] & 0x3f
			if b > 40 {
				return 0, false
			}
			if b == 40 {
				return 0xffffffff, true
			}
			return int64(2|b&1) << (b/2 + 11), true
		}
	}
	return 0, false
}

// xzTailLen is how many of the last consumed bytes xzTail keeps: enough
// for the stream footer and the index of any stream with up to a few
// hundred blocks.
const xzTailLen = 8192

// xzReader checks, when ulikunitz/xz reports the end of input, that the
// input really ended with a complete stream: a stream footer (magic "YZ",
// CRC32) after an index (indicator byte, CRC32), then only stream padding.
// ulikunitz/xz returns io.EOF when the input ends where a block header or
// the index should start, so without this a stream cut after its header,
// or between its last block and the index, would read as complete.
type xzReader struct {
	dec  io.Reader
	tail *xzTail
}

func (x *xzReader) Read(p []byte) (int, error) {
	n, err := x.dec.Read(p)
	if err == io.EOF {
		if verr := x.tail.verify(); verr != nil {
			return n, verr
		}
	}
	return n, err
}

// xzTail passes reads through and remembers the last xzTailLen bytes.
type xzTail struct {
	r    io.Reader
	ring [xzTailLen]byte
	n    int64 // bytes seen
}

func (t *xzTail) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	b := p[:n]
	if len(b) > xzTailLen {
		t.n += int64(len(b) - xzTailLen)
		b = b[len(b)-xzTailLen:]
	}
	for len(b) > 0 {
		c := copy(t.ring[t.n%xzTailLen:], b)
		b = b[c:]
		t.n += int64(c)
	}
	return n, err
}

// last returns the bytes kept, oldest first.
func (t *xzTail) last() []byte {
	if t.n <= xzTailLen {
		return t.ring[:t.n]
	}
	pos := t.n % xzTailLen
	out := make([]byte, 0, xzTailLen)
	return append(append(out, t.ring[pos:]...), t.ring[:pos]...)
}

func (t *xzTail) verify() error {
	buf := t.last()
	end := len(buf)
	for end > 0 && buf[end-1] == 0 {
		end--
	}
	if (len(buf)-end)%4 != 0 {
		return fmt.Errorf("stream padding of %d bytes is not a multiple of 4: %w", len(buf)-end, io.ErrUnexpectedEOF)
	}
	const footerLen = 12
	if end < footerLen || buf[end-2] != 'Y' || buf[end-1] != 'Z' {
		return fmt.Errorf("input does not end with a stream footer: %w", io.ErrUnexpectedEOF)
	}
	f := buf[end-footerLen : end]
	if crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f[0:4]) {
		return errors.New("stream footer checksum mismatch")
	}
	indexLen := (int64(binary.LittleEndian.Uint32(f[4:8])) + 1) * 4
	if indexLen > int64(end-footerLen) {
		if t.n > xzTailLen {
			return nil // the index is larger than the window: ulikunitz/xz checked it
		}
		return errors.New("index size in the stream footer exceeds the stream")
	}
	idx := buf[int64(end-footerLen)-indexLen : end-footerLen]
	if idx[0] != 0 {
		return errors.New("index indicator byte is not zero")
	}
	if crc32.ChecksumIEEE(idx[:len(idx)-4]) != binary.LittleEndian.Uint32(idx[len(idx)-4:]) {
		return errors.New("index checksum mismatch")
	}
	return nil
}
