// Package retention decides which backups and WAL files a retention
// policy makes obsolete, with the exact rules of barman-cloud-backup-delete,
// and removes them. Policy evaluation is pure: time is passed in.
package retention

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Policy is a retention policy: keep Redundancy backups, or keep what a
// recovery Window back from now needs.
type Policy struct {
	Redundancy int
	Window     time.Duration
	// Value and Unit keep the user's spelling for messages: 7 "DAYS".
	Value int
	Unit  string
}

// String renders the policy in barman's syntax.
func (p Policy) String() string {
	if p.Unit == "" {
		return fmt.Sprintf("REDUNDANCY %d", p.Redundancy)
	}
	return fmt.Sprintf("RECOVERY WINDOW OF %d %s", p.Value, p.Unit)
}

var (
	redundancyRe = regexp.MustCompile(`(?i)^\s*redundancy\s+(\d+)\s*$`)
	windowRe     = regexp.MustCompile(`(?i)^\s*recovery\s+window\s+of\s+(\d+)\s+(day|month|week)s?\s*$`)
	shortRe      = regexp.MustCompile(`^([1-9][0-9]*)([dwm])$`)
)

const day = 24 * time.Hour

// ParsePolicy parses "REDUNDANCY n", "RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS"
// (barman-cloud's -r) or the ObjectStore form "30d", "4w", "6m". A month
// counts as 31 days, as in barman.
func ParsePolicy(s string) (Policy, error) {
	if m := redundancyRe.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 1 {
			return Policy{}, fmt.Errorf("retention policy %q: redundancy must be at least 1", s)
		}
		return Policy{Redundancy: n}, nil
	}
	var n int
	var unit string
	if m := windowRe.FindStringSubmatch(s); m != nil {
		n, _ = strconv.Atoi(m[1])
		unit = strings.ToLower(m[2])
	} else if m := shortRe.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
		n, _ = strconv.Atoi(m[1])
		unit = map[string]string{"d": "day", "w": "week", "m": "month"}[m[2]]
	} else {
		return Policy{}, fmt.Errorf("retention policy %q is not valid: use \"REDUNDANCY n\", \"RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS\" or 30d/4w/6m", s)
	}
	if n > 100000 {
		return Policy{}, fmt.Errorf("retention policy %q: window too large", s)
	}
	switch unit {
	case "day":
		return Policy{Window: time.Duration(n) * day, Value: n, Unit: "DAYS"}, nil
	case "week":
		return Policy{Window: time.Duration(n) * 7 * day, Value: n, Unit: "WEEKS"}, nil
	}
	return Policy{Window: time.Duration(n) * 31 * day, Value: n, Unit: "MONTHS"}, nil
}

// Status is a backup's standing under a policy, with barman's names.
type Status string

// Statuses.
const (
	Valid               Status = "VALID"
	Obsolete            Status = "OBSOLETE"
	PotentiallyObsolete Status = "OBSOLETE*" // kept only for minimum redundancy
	KeepFull            Status = "KEEP:FULL"
	KeepStandalone      Status = "KEEP:STANDALONE"
	None                Status = "-" // not DONE: never counted, never deleted
)

// Backup is what retention needs to know of a catalog entry.
type Backup struct {
	ID       string
	Status   string // DONE, FAILED, WAITING_FOR_WALS, ...
	EndTime  time.Time
	BeginWAL string
	EndWAL   string
	Timeline int
	Keep     string // "", "full" or "standalone"
}

func keepStatus(b Backup) Status {
	switch b.Keep {
	case "":
		return ""
	case "standalone":
		return KeepStandalone
	}
	return KeepFull
}

// Report classifies every backup under p, as barman's retention report
// does. minRedundancy is -m/--minimum-redundancy; now is the current time.
func Report(backups []Backup, p Policy, minRedundancy int, now time.Time) map[string]Status {
	sorted := append([]Backup(nil), backups...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID > sorted[j].ID })
	report := make(map[string]Status, len(sorted))
	if p.Unit == "" {
		redundancy := max(p.Redundancy, minRedundancy)
		i := 0
		for _, b := range sorted {
			if b.Status != "DONE" {
				report[b.ID] = None
				continue
			}
			switch k := keepStatus(b); {
			case k != "":
				report[b.ID] = k
			case i < redundancy:
				report[b.ID] = Valid
			default:
				report[b.ID] = Obsolete
			}
			i++
		}
		return report
	}
	point := now.Add(-p.Window)
	found := false
	valid := 0
	for _, b := range sorted {
		if b.Status != "DONE" {
			report[b.ID] = None
			continue
		}
		k := keepStatus(b)
		switch {
		case !found:
			report[b.ID] = Valid
			if k != "" {
				report[b.ID] = k
			}
			valid++
			if b.EndTime.Before(point) {
				found = true
			}
		case valid < minRedundancy:
			report[b.ID] = PotentiallyObsolete
			if k != "" {
				report[b.ID] = k
			}
			valid++
		case k != "":
			report[b.ID] = k
		default:
			report[b.ID] = Obsolete
		}
	}
	return report
}

// ObsoleteIDs returns the backups a report marks OBSOLETE, oldest first:
// the order in which they are deleted.
func ObsoleteIDs(report map[string]Status) []string {
	var ids []string
	for id, s := range report {
		if s == Obsolete {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
