package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Errors callers test for with errors.Is.
var (
	// ErrNotFound means that no backup matches an ID, name or shortcut.
	ErrNotFound = errors.New("backup not found")
	// ErrAmbiguous means that several backups have the requested name.
	ErrAmbiguous = errors.New("backup name is ambiguous")
)

// Keep annotation targets.
const (
	KeepFull       = "full"
	KeepStandalone = "standalone"
)

// Catalog is the backup catalog of one server in a bucket that is already
// scoped to the destination prefix, so keys start with "<Server>/".
type Catalog struct {
	Bucket storage.Bucket
	Server string
}

// Entry is one backup directory of the catalog. Info is nil when the
// backup.info could not be read or parsed; Err then says why.
type Entry struct {
	ID   string
	Info *BackupInfo
	Err  error
}

// List returns the backups of the server sorted by ID, like barman's
// get_backup_list: every directory under <server>/base/ that holds a
// backup.info. A directory without one (a backup in progress or killed) is
// not a backup. A backup.info that cannot be read or parsed gives an Entry
// with Err set rather than failing the listing.
func (c *Catalog) List(ctx context.Context) ([]Entry, error) {
	base := layout.BaseDir(c.Server)
	var ids []string
	seen := map[string]bool{}
	err := c.Bucket.List(ctx, base, func(o storage.ObjectInfo) error {
		id, rest, ok := strings.Cut(strings.TrimPrefix(o.Key, base), "/")
		if ok && id != "" && !seen[id] && rest == "backup.info" {
			seen[id] = true
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backups of %s: %w", c.Server, err)
	}
	sort.Strings(ids)
	all := make([]Entry, len(ids))
	sem := make(chan struct{}, listConcurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			info, err := c.Get(ctx, id)
			all[i] = Entry{ID: id, Info: info, Err: err}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries := all[:0]
	for _, e := range all {
		if !errors.Is(e.Err, ErrNotFound) { // deleted since the listing
			entries = append(entries, e)
		}
	}
	return entries, nil
}

// listConcurrency bounds the backup.info reads List runs at once.
const listConcurrency = 8

// Get reads and parses the backup.info of a backup. A missing backup.info
// gives an error matching ErrNotFound.
func (c *Catalog) Get(ctx context.Context, id string) (*BackupInfo, error) {
	key := layout.BackupInfoKey(c.Server, id)
	data, err := storage.ReadAll(ctx, c.Bucket, key)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, fmt.Errorf("backup %s for server %s: %w", id, c.Server, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	info, err := ParseBackupInfo(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return info, nil
}

// Put writes the backup.info of a backup, after Validate.
func (c *Catalog) Put(ctx context.Context, id string, info *BackupInfo) error {
	if err := info.Validate(); err != nil {
		return err
	}
	key := layout.BackupInfoKey(c.Server, id)
	data := info.Marshal()
	if err := c.Bucket.Put(ctx, key, bytes.NewReader(data), int64(len(data)), storage.PutOptions{}); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// Resolve finds the backup an identifier designates, like barman-cloud's
// parse_backup_id: "latest" or "last" (the highest ID, any status),
// "oldest" or "first" (the lowest ID), "last-failed" (the highest FAILED
// ID), a backup ID, or else a backup name, which must match exactly one
// backup. Unreadable backups are only found by ID, and then their read
// error is returned.
func (c *Catalog) Resolve(ctx context.Context, idOrName string) (Entry, error) {
	entries, err := c.List(ctx)
	if err != nil {
		return Entry{}, err
	}
	return resolveIn(entries, idOrName, c.Server)
}

func resolveIn(entries []Entry, idOrName, server string) (Entry, error) {
	var ok []Entry
	for _, e := range entries {
		if e.Info != nil && e.Err == nil {
			ok = append(ok, e)
		}
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].ID < ok[j].ID })
	none := func(what string) (Entry, error) {
		return Entry{}, fmt.Errorf("no %s backup for server %s: %w", what, server, ErrNotFound)
	}
	switch idOrName {
	case "latest", "last":
		if len(ok) == 0 {
			return none(idOrName)
		}
		return ok[len(ok)-1], nil
	case "oldest", "first":
		if len(ok) == 0 {
			return none(idOrName)
		}
		return ok[0], nil
	case "last-failed":
		for i := len(ok) - 1; i >= 0; i-- {
			if ok[i].Info.StatusValue() == StatusFailed {
				return ok[i], nil
			}
		}
		return none("failed")
	}
	if layout.IsBackupID(idOrName) {
		for _, e := range entries {
			if e.ID == idOrName {
				if e.Err != nil {
					return e, e.Err
				}
				return e, nil
			}
		}
		return Entry{}, fmt.Errorf("backup %s for server %s does not exist: %w", idOrName, server, ErrNotFound)
	}
	var match []Entry
	for _, e := range ok {
		if e.Info.BackupName != nil && *e.Info.BackupName == idOrName {
			match = append(match, e)
		}
	}
	switch len(match) {
	case 0:
		return Entry{}, fmt.Errorf("unknown backup '%s' for server '%s': %w", idOrName, server, ErrNotFound)
	case 1:
		return match[0], nil
	}
	ids := make([]string, len(match))
	for i, e := range match {
		ids[i] = e.ID
	}
	return Entry{}, fmt.Errorf("multiple backups found matching name '%s' (try using backup ID instead): %s: %w",
		idOrName, strings.Join(ids, " "), ErrAmbiguous)
}

// reservedNames may not be used as backup names (barman 3.17's
// RESERVED_BACKUP_IDS plus "auto", which barman-cloud-restore reserves).
var reservedNames = []string{"latest", "last", "oldest", "first", "last-failed", "latest-full", "last-full", "auto"}

// CheckBackupName validates a --name value like barman's
// check_backup_name: not empty, not shaped like a backup ID, not a
// reserved shortcut.
func CheckBackupName(name string) error {
	if name == "" {
		return errors.New("backup name cannot be empty")
	}
	if pyIsBackupID(name) {
		return fmt.Errorf("backup name '%s' is not allowed: backup ID", name)
	}
	for _, r := range reservedNames {
		if name == r {
			return fmt.Errorf("backup name '%s' is not allowed: reserved word", name)
		}
	}
	return nil
}

// pyIsBackupID is barman's is_backup_id exactly: re.match(r"(\d{8})T\d{6}$")
// on a str, where \d is any Unicode decimal digit and $ also matches
// before a final newline.
func pyIsBackupID(s string) bool {
	s = strings.TrimSuffix(s, "\n")
	rs := []rune(s)
	if len(rs) != 15 || rs[8] != 'T' {
		return false
	}
	for i, r := range rs {
		if i != 8 && !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// NewBackupID returns the backup ID for a backup started at t:
// YYYYMMDDTHHMMSS in t's own location. barman-cloud-backup uses the local
// time of the machine, so callers pass time.Now() (local).
func NewBackupID(t time.Time) string { return t.Format("20060102T150405") }

// Keep returns the keep annotation target of a backup: "" when there is
// none, else the first line of the annotation ("full" or "standalone").
// An annotation whose first line is empty still keeps the backup in barman
// and reads as "full".
func (c *Catalog) Keep(ctx context.Context, id string) (string, error) {
	key := layout.KeepKey(c.Server, id)
	data, err := storage.ReadAll(ctx, c.Bucket, key)
	if errors.Is(err, storage.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	return keepTarget(data), nil
}

func keepTarget(data []byte) string {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	if len(line) == 0 {
		return KeepFull
	}
	return string(line)
}

// KeepAll returns the keep targets of all annotated backups of the server,
// found with one listing like barman's annotation cache.
func (c *Catalog) KeepAll(ctx context.Context) (map[string]string, error) {
	base := layout.BaseDir(c.Server)
	var ids []string
	err := c.Bucket.List(ctx, base, func(o storage.ObjectInfo) error {
		parts := strings.Split(strings.TrimPrefix(o.Key, base), "/")
		if len(parts) == 3 && parts[1] == "annotations" && parts[2] == "keep" {
			ids = append(ids, parts[0])
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keep annotations of %s: %w", c.Server, err)
	}
	keep := make(map[string]string, len(ids))
	for _, id := range ids {
		target, err := c.Keep(ctx, id)
		if err != nil {
			return nil, err
		}
		if target != "" {
			keep[id] = target
		}
	}
	return keep, nil
}

// SetKeep adds a keep annotation ("full" or "standalone") to a backup,
// which must have status DONE.
func (c *Catalog) SetKeep(ctx context.Context, id, target string) error {
	if target != KeepFull && target != KeepStandalone {
		return fmt.Errorf("unsupported recovery target: %s", target)
	}
	info, err := c.Get(ctx, id)
	if err != nil {
		return err
	}
	if info.StatusValue() != StatusDone {
		return fmt.Errorf("cannot add keep to backup %s because it has status %s: only backups with status DONE can be kept",
			id, pyStr(info.Status))
	}
	key := layout.KeepKey(c.Server, id)
	if err := c.Bucket.Put(ctx, key, strings.NewReader(target), int64(len(target)), storage.PutOptions{}); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// ReleaseKeep removes the keep annotation of a backup, if any.
func (c *Catalog) ReleaseKeep(ctx context.Context, id string) error {
	key := layout.KeepKey(c.Server, id)
	if err := c.Bucket.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}
