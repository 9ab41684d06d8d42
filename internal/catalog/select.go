package catalog

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ParseLSN parses a PostgreSQL LSN in "%X/%X" form ("16/B374D848") like
// barman's parse_lsn: (hi << 32) + lo, each part hexadecimal.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || strings.Contains(lo, "/") {
		return 0, fmt.Errorf("invalid LSN %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("invalid LSN %q", s)
	}
	return h<<32 | l, nil
}

// FormatLSN formats an LSN as PostgreSQL does: uppercase "%X/%X".
func FormatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", lsn>>32, lsn&0xFFFFFFFF)
}

// newestFirst returns the readable entries sorted by ID, newest first.
func newestFirst(entries []Entry) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.Info != nil && e.Err == nil {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out
}

func onTimeline(e Entry, tli int) bool {
	return tli <= 0 || (e.Info.Timeline != nil && *e.Info.Timeline == tli)
}

// SelectByTargetTime picks the backup for a recovery to target like
// barman's get_backup_id_from_target_time: the newest backup (by ID, any
// status) whose end_time is not after target, on timeline tli when tli > 0.
// Backups without an end_time are skipped (barman would fail on them).
func SelectByTargetTime(entries []Entry, target time.Time, tli int) (Entry, bool) {
	for _, e := range newestFirst(entries) {
		if e.Info.EndTime != nil && !e.Info.EndTime.After(target) && onTimeline(e, tli) {
			return e, true
		}
	}
	return Entry{}, false
}

// SelectByTargetLSN picks the newest backup (by ID, any status) whose
// end_xlog is not after target, on timeline tli when tli > 0, like
// barman's get_backup_id_from_target_lsn. Backups without a valid end_xlog
// are skipped.
func SelectByTargetLSN(entries []Entry, target uint64, tli int) (Entry, bool) {
	for _, e := range newestFirst(entries) {
		if e.Info.EndXlog == nil {
			continue
		}
		end, err := ParseLSN(*e.Info.EndXlog)
		if err == nil && end <= target && onTimeline(e, tli) {
			return e, true
		}
	}
	return Entry{}, false
}

// SelectByTLI picks the newest backup (by ID, any status) on timeline tli,
// like barman's get_backup_id_from_target_tli.
func SelectByTLI(entries []Entry, tli int) (Entry, bool) {
	for _, e := range newestFirst(entries) {
		if e.Info.Timeline != nil && *e.Info.Timeline == tli {
			return e, true
		}
	}
	return Entry{}, false
}

// SelectLatest picks the newest readable backup (by ID, any status), the
// one barman-cloud-restore uses for "auto" without a target.
func SelectLatest(entries []Entry) (Entry, bool) {
	if s := newestFirst(entries); len(s) > 0 {
		return s[0], true
	}
	return Entry{}, false
}
