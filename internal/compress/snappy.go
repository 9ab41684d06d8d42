package compress

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/golang/snappy"
)

// Snappy framing format (github.com/google/snappy framing_format.txt).
const (
	snappyChunkCompressed   = 0x00
	snappyChunkUncompressed = 0x01
	snappyChunkStreamID     = 0xff
	snappyMaxBlock          = 65536
	snappyStreamIDBody      = "sNaPpY"
)

var (
	crc32c = crc32.MakeTable(crc32.Castagnoli)

	errSnappyNoHeader = errors.New("stream does not start with the stream identifier chunk")
	errSnappyNoData   = fmt.Errorf("stream holds no data chunk after the stream identifier: %w", io.ErrUnexpectedEOF)
)

// snappyMaskedCRC is the framing format's masked CRC-32C.
func snappyMaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, crc32c)
	return (c>>15 | c<<17) + 0xa282ead8
}

// snappyReader reads the snappy framing format more strictly than the
// format requires, so that corruption does not go unnoticed:
//   - reserved skippable chunks (0x80-0xfd) and padding (0xfe) are errors.
//     No barman writer emits them (python-snappy's StreamCompressor and
//     golang/snappy write only the stream identifier and data chunks), and
//     accepting them lets one flipped chunk-type bit drop 64 KiB silently;
//   - a stream holding the identifier but no data chunk is an error: those
//     writers emit nothing at all for empty input.
//
// A stream cut exactly between two data chunks still reads as complete:
// the format has no end marker.
type snappyReader struct {
	r       io.Reader
	hdr     [4]byte
	buf     []byte // chunk body
	dec     []byte // decoded block
	i, j    int    // dec[i:j] is not yet returned
	started bool   // stream identifier seen
	gotData bool   // a data chunk seen
	err     error
}

func newSnappyReader() *snappyReader {
	return &snappyReader{
		buf: make([]byte, snappy.MaxEncodedLen(snappyMaxBlock)+4),
		dec: make([]byte, snappyMaxBlock),
	}
}

func (s *snappyReader) reset(r io.Reader) {
	s.r, s.i, s.j, s.started, s.gotData, s.err = r, 0, 0, false, false, nil
}

func (s *snappyReader) Read(p []byte) (int, error) {
	for s.i >= s.j {
		if s.err != nil {
			return 0, s.err
		}
		s.err = s.nextChunk()
	}
	n := copy(p, s.dec[s.i:s.j])
	s.i += n
	return n, nil
}

// readFull reads len(b) bytes; EOF at the start is allowed only at a chunk
// boundary (atBoundary).
func (s *snappyReader) readFull(b []byte, atBoundary bool) error {
	_, err := io.ReadFull(s.r, b)
	if err == io.EOF && !atBoundary {
		return io.ErrUnexpectedEOF
	}
	return err
}

// nextChunk reads chunks until one holds data, leaving it in dec[i:j].
func (s *snappyReader) nextChunk() error {
	if err := s.readFull(s.hdr[:], true); err != nil {
		if errors.Is(err, io.EOF) && s.started && !s.gotData {
			return errSnappyNoData
		}
		return err
	}
	typ := s.hdr[0]
	size := int(s.hdr[1]) | int(s.hdr[2])<<8 | int(s.hdr[3])<<16
	if !s.started && typ != snappyChunkStreamID {
		return errSnappyNoHeader
	}
	switch {
	case typ == snappyChunkStreamID:
		if size != len(snappyStreamIDBody) {
			return fmt.Errorf("stream identifier chunk of %d bytes", size)
		}
		if err := s.readFull(s.buf[:size], false); err != nil {
			return err
		}
		if string(s.buf[:size]) != snappyStreamIDBody {
			return errors.New("stream identifier chunk holds the wrong magic")
		}
		s.started = true
		return nil
	case typ == snappyChunkCompressed || typ == snappyChunkUncompressed:
		if size < 4 || size > len(s.buf) {
			return fmt.Errorf("data chunk of %d bytes", size)
		}
		body := s.buf[:size]
		if err := s.readFull(body, false); err != nil {
			return err
		}
		want := uint32(body[0]) | uint32(body[1])<<8 | uint32(body[2])<<16 | uint32(body[3])<<24
		data := body[4:]
		if typ == snappyChunkCompressed {
			n, err := snappy.DecodedLen(data)
			if err != nil || n > snappyMaxBlock {
				return fmt.Errorf("compressed chunk decodes to %d bytes: %w", n, snappy.ErrCorrupt)
			}
			if data, err = snappy.Decode(s.dec[:n], data); err != nil {
				return fmt.Errorf("compressed chunk: %w", err)
			}
		} else {
			if len(data) > snappyMaxBlock {
				return fmt.Errorf("uncompressed chunk of %d bytes", len(data))
			}
			data = s.dec[:copy(s.dec, data)]
		}
		if snappyMaskedCRC(data) != want {
			return errors.New("chunk checksum mismatch")
		}
		s.i, s.j, s.gotData = 0, len(data), true
		return nil
	case typ <= 0x7f:
		return fmt.Errorf("chunk type 0x%02x is reserved and unskippable", typ)
	default:
		return fmt.Errorf("chunk type 0x%02x (padding or skippable) is never written by barman writers: treated as corruption", typ)
	}
}
