package restore

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// ErrBadSelection reports target options that cannot select a backup.
var ErrBadSelection = errors.New("invalid backup selection")

// Selection chooses the backup for BACKUP_ID "auto", as
// barman-cloud-restore's --target-time, --target-lsn and --target-tli do.
type Selection struct {
	Time string // a timestamp; without a zone it is local time
	LSN  string // "X/X"
	TLI  string // a timeline number, or "latest" (the highest in the archive)
}

func (s Selection) empty() bool { return s.Time == "" && s.LSN == "" && s.TLI == "" }

// Select resolves BACKUP_ID: "auto" picks the backup by the selection
// (the newest backup without one); anything else is resolved by
// catalog.Resolve (ID, name, latest/last, oldest/first, last-failed).
func Select(ctx context.Context, b storage.Bucket, server, backupID string, sel Selection) (catalog.Entry, error) {
	cat := &catalog.Catalog{Bucket: b, Server: server}
	if backupID != "auto" {
		if !sel.empty() {
			return catalog.Entry{}, fmt.Errorf("%w: --target-time, --target-lsn and --target-tli select a backup only with BACKUP_ID auto", ErrBadSelection)
		}
		return cat.Resolve(ctx, backupID)
	}
	if sel.Time != "" && sel.LSN != "" {
		return catalog.Entry{}, fmt.Errorf("%w: --target-time and --target-lsn are mutually exclusive", ErrBadSelection)
	}
	tli := 0
	switch sel.TLI {
	case "":
	case "current":
		return catalog.Entry{}, fmt.Errorf("%w: --target-tli current is not valid here: give a number or latest", ErrBadSelection)
	case "latest":
		n, err := highestTimeline(ctx, b, server)
		if err != nil {
			return catalog.Entry{}, err
		}
		tli = n
	default:
		n, err := strconv.Atoi(sel.TLI)
		if err != nil || n < 1 {
			return catalog.Entry{}, fmt.Errorf("%w: --target-tli %q must be a positive number or latest", ErrBadSelection, sel.TLI)
		}
		tli = n
	}
	entries, err := cat.List(ctx)
	if err != nil {
		return catalog.Entry{}, err
	}
	var e catalog.Entry
	var ok bool
	var what string
	switch {
	case sel.Time != "":
		t, err := ParseTargetTime(sel.Time)
		if err != nil {
			return catalog.Entry{}, fmt.Errorf("%w: %w", ErrBadSelection, err)
		}
		e, ok = catalog.SelectByTargetTime(entries, t, tli)
		what = "ending before " + sel.Time
	case sel.LSN != "":
		lsn, err := catalog.ParseLSN(sel.LSN)
		if err != nil {
			return catalog.Entry{}, fmt.Errorf("%w: %w", ErrBadSelection, err)
		}
		e, ok = catalog.SelectByTargetLSN(entries, lsn, tli)
		what = "ending before LSN " + sel.LSN
	case tli > 0:
		e, ok = catalog.SelectByTLI(entries, tli)
		what = "on timeline " + strconv.Itoa(tli)
	default:
		e, ok = catalog.SelectLatest(entries)
		what = "at all"
	}
	if !ok {
		return catalog.Entry{}, fmt.Errorf("no backup %s for server %s: %w", what, server, catalog.ErrNotFound)
	}
	return e, nil
}

// zoneSuffix matches the zone at the end of a timestamp that has a time.
var zoneSuffix = regexp.MustCompile(`(?i)(z|utc|gmt|[+-]\d{2}(:?\d{2}(:?\d{2})?)?)$`)

// ParseTargetTime parses a target time like barman (dateutil): with a
// zone it is absolute, without one it is the local time of this machine.
func ParseTargetTime(s string) (time.Time, error) {
	t, err := catalog.ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse target time %q: use YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]", s)
	}
	trimmed := strings.TrimSpace(s)
	if strings.Contains(trimmed, ":") && zoneSuffix.MatchString(trimmed) {
		return t, nil
	}
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.Local), nil
}

// highestTimeline returns the highest timeline of the WAL archive, from
// the hash directories and .history files under wals/.
func highestTimeline(ctx context.Context, b storage.Bucket, server string) (int, error) {
	prefix := layout.WALDir(server)
	best := 0
	err := b.List(ctx, prefix, func(o storage.ObjectInfo) error {
		_, name := compress.FromWALName(path.Base(o.Key))
		if !layout.IsWALFile(name) {
			return nil
		}
		if n, err := strconv.ParseUint(name[:8], 16, 32); err == nil && int(n) > best {
			best = int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list WAL archive of %s: %w", server, err)
	}
	if best == 0 {
		return 0, fmt.Errorf("%w: --target-tli latest: the WAL archive of %s is empty", ErrBadSelection, server)
	}
	return best, nil
}
