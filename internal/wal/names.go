// Package wal archives PostgreSQL WAL files to a Barman Cloud store and
// restores them, compatibly with barman-cloud-wal-archive and
// barman-cloud-wal-restore, with parallel archiving and restore prefetch.
package wal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/bcloud-dev/bcloud/internal/layout"
)

// ErrInvalidName is returned for a file name that is not a WAL file.
var ErrInvalidName = errors.New("not a WAL file name")

// ErrNotFound is returned by Restore when the store has no such WAL file.
var ErrNotFound = errors.New("WAL file not found in the archive")

// Segment identifies a WAL segment by timeline, log and segment number.
type Segment struct {
	TLI uint32
	Log uint32
	Seg uint32
}

// ParseSegment parses a plain 24-character segment name.
func ParseSegment(name string) (Segment, error) {
	if len(name) != 24 {
		return Segment{}, fmt.Errorf("%q: %w", name, ErrInvalidName)
	}
	var v [3]uint64
	for i := range v {
		n, err := strconv.ParseUint(name[i*8:i*8+8], 16, 32)
		if err != nil {
			return Segment{}, fmt.Errorf("%q: %w", name, ErrInvalidName)
		}
		v[i] = n
	}
	return Segment{TLI: uint32(v[0]), Log: uint32(v[1]), Seg: uint32(v[2])}, nil
}

// Name returns the segment's file name.
func (s Segment) Name() string { return fmt.Sprintf("%08X%08X%08X", s.TLI, s.Log, s.Seg) }

// Next returns the following segment on the same timeline for a server
// whose segments are segSize bytes.
func (s Segment) Next(segSize int64) Segment {
	perLog := uint32((1 << 32) / segSize)
	s.Seg++
	if s.Seg >= perLog {
		s.Seg = 0
		s.Log++
	}
	return s
}

// Kind classifies WAL file names.
type Kind int

// Kinds of WAL files.
const (
	KindSegment Kind = iota
	KindHistory
	KindBackup
	KindPartial
)

// Classify validates name (a base name, as %f gives it) and returns its kind.
func Classify(name string) (Kind, error) {
	if name != path.Base(name) || !layout.IsWALFile(name) {
		return 0, fmt.Errorf("%q: %w", name, ErrInvalidName)
	}
	switch {
	case strings.HasSuffix(name, ".history"):
		return KindHistory, nil
	case strings.HasSuffix(name, ".backup"):
		return KindBackup, nil
	case strings.HasSuffix(name, ".partial"):
		return KindPartial, nil
	}
	return KindSegment, nil
}

// HistoryEntry is one line of a timeline history file: timeline TLI was
// left for a newer one at SwitchLSN.
type HistoryEntry struct {
	TLI       uint32
	SwitchLSN uint64
}

// ParseHistory parses the content of a NNNNNNNN.history file.
func ParseHistory(data []byte) ([]HistoryEntry, error) {
	var out []HistoryEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("history line %q: want <timeline> <lsn> [reason]", line)
		}
		tli, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("history line %q: bad timeline", line)
		}
		lsn, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("history line %q: %w", line, err)
		}
		out = append(out, HistoryEntry{TLI: uint32(tli), SwitchLSN: lsn})
	}
	return out, sc.Err()
}

// ParseLSN parses "16/B374D848".
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("LSN %q: want X/X", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("LSN %q: want hexadecimal X/X", s)
	}
	return h<<32 | l, nil
}

// SegmentOf returns the segment holding lsn on timeline tli.
func SegmentOf(tli uint32, lsn uint64, segSize int64) Segment {
	segNo := lsn / uint64(segSize)
	perLog := uint64((1 << 32) / segSize)
	return Segment{TLI: tli, Log: uint32(segNo / perLog), Seg: uint32(segNo % perLog)}
}

// segNo returns the absolute segment number of s.
func (s Segment) segNo(segSize int64) uint64 {
	return uint64(s.Log)*uint64((1<<32)/segSize) + uint64(s.Seg)
}

// CheckSegmentHeader checks the long page header at the start of a WAL
// segment (the first 40 bytes) against the segment's name: the page
// address must be where the name says, and the page's timeline no newer.
func CheckSegmentHeader(name string, head []byte, segSize int64) error {
	if len(head) < 16 {
		return fmt.Errorf("segment shorter than a page header")
	}
	seg, err := ParseSegment(name[:min(len(name), 24)])
	if err != nil {
		return err
	}
	want := seg.segNo(segSize) * uint64(segSize)
	if got := binary.LittleEndian.Uint64(head[8:16]); got != want {
		return fmt.Errorf("first page header says address %X/%X, the name says %X/%X: the object holds another segment",
			got>>32, uint32(got), want>>32, uint32(want))
	}
	if tli := binary.LittleEndian.Uint32(head[4:8]); tli == 0 || tli > seg.TLI {
		return fmt.Errorf("first page header has timeline %d, the name says %d", tli, seg.TLI)
	}
	return nil
}
