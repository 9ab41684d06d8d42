package retention

import (
	"sort"
	"strconv"
	"strings"
)

// inWALFilter reports whether a backup counts as "previous" or "next" for
// WAL cleanup (barman's DEFAULT_STATUS_FILTER).
func inWALFilter(b Backup) bool { return b.Status == "DONE" || b.Status == "WAITING_FOR_WALS" }

// WALName is an archived WAL file: its name without compression suffix
// and the keys holding it.
type WALName struct {
	Name string
	Keys []string
}

// WALsToDelete returns the WAL files that deleting backup id frees, given
// every backup of the catalog (including id) and every archived WAL file,
// with the rules of barman-cloud-backup-delete:
//   - nothing, if an older DONE backup without a standalone keep remains;
//   - the ranges of older keep:standalone backups are kept, and when
//     skipIfStandalone is true (deleting with -b) such a backup means nothing is freed;
//   - WAL files before the begin WAL of the next backup (or of the deleted
//     one when it is the newest) are freed, except .history files and
//     files on timelines that other backups use.
func WALsToDelete(backups []Backup, id string, wals []WALName, skipIfStandalone bool) []WALName {
	sorted := append([]Backup(nil), backups...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	idx := -1
	for i, b := range sorted {
		if b.ID == id {
			idx = i
		}
	}
	if idx < 0 {
		return nil
	}
	deleted := sorted[idx]
	var protect [][2]string
	for i := idx - 1; i >= 0; i-- {
		prev := sorted[i]
		if !inWALFilter(prev) {
			continue
		}
		if prev.Keep != "standalone" || skipIfStandalone {
			return nil
		}
		protect = append(protect, [2]string{prev.BeginWAL, prev.EndWAL})
	}
	removeUntil := deleted
	for _, b := range sorted[idx+1:] {
		if inWALFilter(b) {
			removeUntil = b
			break
		}
	}
	protectTLI := map[int]bool{}
	for _, b := range sorted {
		if b.ID != deleted.ID {
			protectTLI[b.Timeline] = true
		}
	}
	delete(protectTLI, removeUntil.Timeline)

	var out []WALName
	for _, w := range wals {
		if strings.HasSuffix(w.Name, ".history") || len(w.Name) < 24 {
			continue
		}
		if tli, err := strconv.ParseUint(w.Name[:8], 16, 32); err == nil && protectTLI[int(tli)] {
			continue
		}
		check := w.Name
		if strings.HasSuffix(check, ".backup") {
			check = check[:24]
		}
		protected := false
		for _, r := range protect {
			if check >= r[0] && check <= r[1] {
				protected = true
				break
			}
		}
		if !protected && w.Name < removeUntil.BeginWAL {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
