package postgres

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseLSN parses a WAL location written as PostgreSQL prints it,
// "%X/%X" (e.g. "16/B374D848").
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" {
		return 0, fmt.Errorf("parse LSN %q: want hex/hex", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	return h<<32 | l, nil
}

// FormatLSN prints a WAL location as PostgreSQL does: "16/B374D848".
func FormatLSN(v uint64) string {
	return fmt.Sprintf("%X/%X", v>>32, v&0xFFFFFFFF)
}

// WALFileName returns the name of the WAL segment holding lsn on timeline
// tli, computed as barman does for begin_wal and end_wal:
// "%08X%08X%08X" % (tli, lsn>>32, (lsn & mask) // segSize), where mask
// covers the segments of one 4 GiB WAL "log" file. segSize is a power of
// two (1 MiB to 1 GiB). For an LSN exactly on a segment boundary this names
// the segment that starts there, like barman; pg_walfile_name names the one
// that ends there.
func WALFileName(tli int, lsn uint64, segSize int64) string {
	size := uint64(segSize)
	mask := size * (0xFFFFFFFF / size)
	return fmt.Sprintf("%08X%08X%08X", tli, lsn>>32, (lsn&mask)/size)
}

// WALOffset returns the offset of lsn inside its segment (begin_offset and
// end_offset in backup.info).
func WALOffset(lsn uint64, segSize int64) int64 {
	return int64(lsn & uint64(segSize-1))
}
