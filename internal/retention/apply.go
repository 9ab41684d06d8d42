package retention

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// ErrRefused is returned when a deletion is refused to protect data: a
// kept backup, minimum redundancy, or an unreadable catalog.
var ErrRefused = errors.New("deletion refused")

// Deleter removes backups and the WAL files they no longer need, in the
// order barman-cloud-backup-delete does: a backup's archives, then its
// backup.info (so a failed run can be retried), then freed WAL files.
type Deleter struct {
	Bucket storage.Bucket
	Server string
	// DryRun prints what would be deleted to Out instead of deleting.
	DryRun bool
	Out    io.Writer
	// BatchSize caps the keys of one delete request (default 1000).
	BatchSize int

	backups []Backup
	wals    []WALName
}

// Load reads the catalog, its keep annotations and the WAL archive. It
// refuses to go on when a backup.info cannot be read: deleting on a
// partial view could remove WAL that the unreadable backup needs.
func (d *Deleter) Load(ctx context.Context) error {
	cat := &catalog.Catalog{Bucket: d.Bucket, Server: d.Server}
	entries, err := cat.List(ctx)
	if err != nil {
		return err
	}
	keep, err := cat.KeepAll(ctx)
	if err != nil {
		return err
	}
	var bad []string
	for _, e := range entries {
		if e.Err != nil {
			bad = append(bad, e.ID)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("cannot read the backup.info of %s: unsafe to delete with a partial catalog; fix or remove those backups first: %w", strings.Join(bad, ", "), ErrRefused)
	}
	d.backups = FromCatalog(entries, keep)
	d.wals, err = ListWAL(ctx, d.Bucket, d.Server)
	return err
}

// Backups returns the loaded catalog.
func (d *Deleter) Backups() []Backup { return d.backups }

// FromCatalog converts catalog entries and keep annotations for retention.
func FromCatalog(entries []catalog.Entry, keep map[string]string) []Backup {
	var out []Backup
	for _, e := range entries {
		if e.Info == nil {
			continue
		}
		b := Backup{ID: e.ID, Status: e.Info.StatusValue(), Keep: keep[e.ID],
			BeginWAL: catalog.Str(e.Info.BeginWAL), EndWAL: catalog.Str(e.Info.EndWAL)}
		if e.Info.EndTime != nil {
			b.EndTime = *e.Info.EndTime
		}
		if e.Info.Timeline != nil {
			b.Timeline = *e.Info.Timeline
		}
		out = append(out, b)
	}
	return out
}

// ListWAL lists a server's archived WAL files by name (one compression
// suffix stripped), with every key holding each name.
func ListWAL(ctx context.Context, b storage.Bucket, server string) ([]WALName, error) {
	byName := map[string]*WALName{}
	var order []string
	err := b.List(ctx, layout.WALDir(server), func(o storage.ObjectInfo) error {
		_, name := compress.FromWALName(path.Base(o.Key))
		if !layout.IsWALFile(name) {
			return nil
		}
		w, ok := byName[name]
		if !ok {
			w = &WALName{Name: name}
			byName[name] = w
			order = append(order, name)
		}
		w.Keys = append(w.Keys, o.Key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list WAL archive of %s: %w", server, err)
	}
	sort.Strings(order)
	out := make([]WALName, 0, len(order))
	for _, n := range order {
		out = append(out, *byName[n])
	}
	return out, nil
}

// DeleteByID deletes one backup as -b/--backup-id does: refused when it
// is kept, or when minRedundancy would be broken.
func (d *Deleter) DeleteByID(ctx context.Context, id string, minRedundancy int) error {
	var target *Backup
	for i := range d.backups {
		if d.backups[i].ID == id {
			target = &d.backups[i]
		}
	}
	if target == nil {
		return fmt.Errorf("backup %s of server %s does not exist: %w", id, d.Server, ErrRefused)
	}
	if target.Keep != "" {
		return fmt.Errorf("backup %s has a keep annotation (%s): release it with backup-keep --release first: %w", id, target.Keep, ErrRefused)
	}
	if minRedundancy > 0 && minRedundancy >= len(d.backups) {
		return fmt.Errorf("deleting backup %s would leave fewer than the minimum redundancy of %d backups (there are %d): %w", id, minRedundancy, len(d.backups), ErrRefused)
	}
	return d.deleteBackup(ctx, id, true)
}

// ApplyPolicy deletes every backup the policy makes OBSOLETE, oldest
// first, each followed by the WAL files it frees. It returns the IDs deleted.
func (d *Deleter) ApplyPolicy(ctx context.Context, p Policy, minRedundancy int, now time.Time) ([]string, error) {
	ids := ObsoleteIDs(Report(d.backups, p, minRedundancy, now))
	var done []string
	for _, id := range ids {
		if err := d.deleteBackup(ctx, id, false); err != nil {
			return done, err
		}
		done = append(done, id)
	}
	return done, nil
}

func (d *Deleter) deleteBackup(ctx context.Context, id string, skipIfStandalone bool) error {
	dir := layout.BackupDir(d.Server, id)
	info := layout.BackupInfoKey(d.Server, id)
	var files []string
	err := d.Bucket.List(ctx, dir, func(o storage.ObjectInfo) error {
		if o.Key != info && !strings.HasPrefix(o.Key, dir+"annotations/") {
			files = append(files, o.Key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list backup %s: %w", id, err)
	}
	if err := d.remove(ctx, "backup "+id, files); err != nil {
		return err
	}
	if err := d.remove(ctx, "backup "+id, []string{info}); err != nil {
		return err
	}
	slog.InfoContext(ctx, "deleted backup", "backupID", id, "objects", len(files)+1, "dryRun", d.DryRun)

	freed := WALsToDelete(d.backups, id, d.wals, skipIfStandalone)
	var keys []string
	gone := map[string]bool{}
	for _, w := range freed {
		keys = append(keys, w.Keys...)
		gone[w.Name] = true
	}
	if err := d.remove(ctx, "WAL for backup "+id, keys); err != nil {
		// barman-cloud logs and goes on; the WAL stays for a later run.
		slog.ErrorContext(ctx, "could not delete WAL freed by the backup", "backupID", id, "error", err)
	} else {
		kept := d.wals[:0]
		for _, w := range d.wals {
			if !gone[w.Name] {
				kept = append(kept, w)
			}
		}
		d.wals = kept
		if len(freed) > 0 {
			slog.InfoContext(ctx, "deleted WAL no backup needs", "backupID", id, "files", len(freed), "first", freed[0].Name, "last", freed[len(freed)-1].Name)
		}
	}
	kept := d.backups[:0]
	for _, b := range d.backups {
		if b.ID != id {
			kept = append(kept, b)
		}
	}
	d.backups = kept
	return nil
}

func (d *Deleter) remove(ctx context.Context, what string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if d.DryRun {
		if d.Out != nil {
			fmt.Fprintf(d.Out, "Skipping deletion of objects %s due to --dry-run option\n", pyList(keys))
		}
		return nil
	}
	batch := d.BatchSize
	if batch <= 0 {
		batch = 1000
	}
	for start := 0; start < len(keys); start += batch {
		end := min(start+batch, len(keys))
		if err := d.Bucket.Delete(ctx, keys[start:end]...); err != nil {
			return fmt.Errorf("delete %s: %w", what, err)
		}
	}
	return nil
}

func pyList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "'" + k + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}
