package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/restore"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

// selectBackup picks the base backup for the Cluster's recovery target
// among the completed backups of server, as upstream's FindBackupInfo:
// backupID exactly; targetTime and targetLSN the newest backup ending
// before them; else the newest backup (on targetTLI when it is a number).
// PITR settings themselves are CloudNativePG's to write.
func selectBackup(ctx context.Context, b storage.Bucket, server string, t *cnpgi.RecoveryTarget) (catalog.Entry, error) {
	all, err := (&catalog.Catalog{Bucket: b, Server: server}).List(ctx)
	if err != nil {
		return catalog.Entry{}, fmt.Errorf("list backups of %s: %w", server, err)
	}
	var done []catalog.Entry
	for _, e := range all {
		if e.Err == nil && e.Info != nil && e.Info.StatusValue() == catalog.StatusDone {
			done = append(done, e)
		}
	}
	if t == nil {
		t = &cnpgi.RecoveryTarget{}
	}
	tli := 0
	if n, err := strconv.Atoi(t.TargetTLI); err == nil && n > 0 {
		tli = n
	}
	var (
		e    catalog.Entry
		ok   bool
		what string
	)
	switch {
	case t.BackupID != "":
		what = "with ID " + t.BackupID
		for _, d := range done {
			if d.ID == t.BackupID {
				e, ok = d, true
			}
		}
	case t.TargetTime != "":
		at, err := restore.ParseTargetTime(t.TargetTime)
		if err != nil {
			return catalog.Entry{}, fmt.Errorf("%w: recoveryTarget.targetTime: %w", cnpgi.ErrConfiguration, err)
		}
		e, ok = catalog.SelectByTargetTime(done, at, tli)
		what = "ending before " + t.TargetTime
	case t.TargetLSN != "":
		lsn, err := catalog.ParseLSN(t.TargetLSN)
		if err != nil {
			return catalog.Entry{}, fmt.Errorf("%w: recoveryTarget.targetLSN: %w", cnpgi.ErrConfiguration, err)
		}
		e, ok = catalog.SelectByTargetLSN(done, lsn, tli)
		what = "ending before LSN " + t.TargetLSN
	case tli > 0:
		e, ok = catalog.SelectByTLI(done, tli)
		what = "on timeline " + t.TargetTLI
	default:
		e, ok = catalog.SelectLatest(done)
		what = "at all"
	}
	if !ok {
		return catalog.Entry{}, fmt.Errorf("%w: no completed backup %s for server %s: %w", cnpgi.ErrConfiguration, what, server, catalog.ErrNotFound)
	}
	return e, nil
}

// checkBeginWAL downloads the backup's first WAL file and drops it: a
// recovery that cannot get it would fail much later, after the whole
// base backup was extracted.
func checkBeginWAL(ctx context.Context, b storage.Bucket, server string, e catalog.Entry, scratch string) error {
	name := catalog.Str(e.Info.BeginWAL)
	if name == "" {
		return nil
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", scratch, err)
	}
	dest := filepath.Join(scratch, "test.wal")
	defer func() { _ = os.Remove(dest) }()
	r := &wal.Restorer{Bucket: b, Server: server}
	if err := r.Restore(ctx, name, dest); err != nil {
		return fmt.Errorf("backup %s needs WAL %s, which the archive cannot give: %w", e.ID, name, err)
	}
	return nil
}

// emptyDir removes what a failed earlier attempt left in dir, keeping
// dir itself (it may be a mount point).
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("clean %s before restoring: %w", dir, err)
		}
	}
	return nil
}

// linkWALDir moves pg_wal to walDir (the WAL volume of spec.walStorage)
// and links it back, as CloudNativePG lays it out.
func linkWALDir(pgdata, walDir string) error {
	pgWAL := filepath.Join(pgdata, "pg_wal")
	if fi, err := os.Lstat(pgWAL); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil
	}
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", walDir, err)
	}
	entries, err := os.ReadDir(pgWAL)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", pgWAL, err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(pgWAL, e.Name()), filepath.Join(walDir, e.Name())); err != nil {
			return fmt.Errorf("move %s to %s: %w", e.Name(), walDir, err)
		}
	}
	if err := os.RemoveAll(pgWAL); err != nil {
		return fmt.Errorf("remove %s: %w", pgWAL, err)
	}
	if err := os.Symlink(walDir, pgWAL); err != nil {
		return fmt.Errorf("link %s: %w", pgWAL, err)
	}
	return nil
}

// restoreConfig is what the restore job appends to postgresql.conf:
// PostgreSQL fetches WAL through the instance manager, which asks this
// sidecar (upstream's exact settings).
func restoreConfig() string {
	return strings.Join([]string{
		"recovery_target_action = promote",
		"restore_command = '/controller/manager wal-restore --log-destination /controller/log/postgres.json %f %p'",
	}, "\n") + "\n"
}
