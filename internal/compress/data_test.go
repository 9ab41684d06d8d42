package compress

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
)

// rng is splitmix64: tiny, and its output never changes between Go
// releases, so golden files made from generated data stay valid.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// walData returns n bytes shaped like a PostgreSQL WAL segment: 8 KiB pages
// with a page header, then records whose payload is tuple-like text,
// random bytes (full-page images of incompressible data) or zeros, and a
// zero-filled tail on the last tenth, as in a segment switched early.
// Gzip compresses it about 3:1.
func walData(n int, seed uint64) []byte {
	const page = 8192
	r := rng(seed)
	out := make([]byte, n)
	used := n - n/10
	var lsn uint64 = 0x1_0000_0000
	names := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
	for p := 0; p < used; p += page {
		end := min(p+page, used)
		buf := out[p:end:end]
		w := bytes.NewBuffer(buf[:0])
		var hdr [24]byte
		binary.LittleEndian.PutUint16(hdr[0:], 0xD10D)
		binary.LittleEndian.PutUint32(hdr[4:], 1)
		binary.LittleEndian.PutUint64(hdr[8:], lsn+uint64(p))
		w.Write(hdr[:])
		for w.Len() < len(buf) {
			var rec [24]byte
			kind := r.intn(100)
			size := 40 + r.intn(400)
			binary.LittleEndian.PutUint32(rec[0:], uint32(size))
			binary.LittleEndian.PutUint32(rec[4:], uint32(1000+p/page))
			binary.LittleEndian.PutUint64(rec[8:], lsn+uint64(p+w.Len()))
			rec[16] = byte(kind % 7)
			binary.LittleEndian.PutUint32(rec[20:], uint32(r.next()))
			w.Write(rec[:])
			switch {
			case kind < 70:
				for i := 0; i < size; {
					s := fmt.Sprintf("(%d,'%s',%d,'2024-01-%02d') ", r.intn(100000), names[r.intn(len(names))], r.intn(1000), 1+r.intn(28))
					w.WriteString(s)
					i += len(s)
				}
			case kind < 85:
				for i := 0; i < size; i += 8 {
					var b [8]byte
					binary.LittleEndian.PutUint64(b[:], r.next())
					w.Write(b[:])
				}
			default:
				w.Write(make([]byte, size))
			}
		}
		copy(buf, w.Bytes())
	}
	return out
}

// goldenData is the input of the golden files: walData that compresses
// well, so the committed files stay small, and spans more than 64 KiB so
// snappy and Python's lz4 frames hold several chunks or blocks.
func goldenData() []byte {
	d := walData(80<<10, 42)
	// Replace the random payloads by text so the files compress ~10:1.
	r := rng(7)
	for i := 0; i+64 <= len(d); i += 64 {
		if r.intn(4) != 0 {
			copy(d[i:], "INSERT INTO orders VALUES (42, 'pending', now()); -- wal filler\n")
		}
	}
	return d
}

// compressBytes compresses data with NewWriter.
func compressBytes(t testing.TB, a Algorithm, lvl Level, data []byte) []byte {
	t.Helper()
	c, err := compressErr(a, lvl, data)
	if err != nil {
		t.Fatalf("compress %s at %s: %v", a, lvl, err)
	}
	return c
}

func compressErr(a Algorithm, lvl Level, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, a, lvl)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decompressBytes decompresses data with NewReader.
func decompressBytes(a Algorithm, data []byte) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(data), a)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
