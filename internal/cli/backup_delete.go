package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/retention"
)

func newBackupDelete() *cobra.Command {
	var (
		c             common
		backupID      string
		policy        string
		minRedundancy int
		dryRun        bool
		batchSize     int
		checkLock     bool
	)
	cmd := &cobra.Command{
		Use:   "backup-delete [options] SOURCE_URL SERVER_NAME",
		Short: "Delete a backup, or every backup a retention policy makes obsolete, with the WAL no backup needs",
		Args:  positional(2, 2, "SOURCE_URL", "SERVER_NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			src, server := args[0], args[1]
			if err := validateServer(server); err != nil {
				return err
			}
			if (backupID == "") == (policy == "") {
				return withCode(ExitUsage, errors.New("give exactly one of -b/--backup-id or -r/--retention-policy"))
			}
			if minRedundancy < 0 {
				return withCode(ExitUsage, fmt.Errorf("--minimum-redundancy must not be negative, got %d", minRedundancy))
			}
			var pol retention.Policy
			if policy != "" {
				var err error
				if pol, err = retention.ParsePolicy(policy); err != nil {
					return withCode(ExitUsage, err)
				}
			}
			b, answered, err := c.open(ctx, src, server, nil)
			if err != nil || answered {
				return err
			}
			defer b.Close()
			maxBatch := b.Properties().DeleteBatch
			if batchSize <= 0 || batchSize > maxBatch {
				batchSize = maxBatch
			}
			d := &retention.Deleter{Bucket: b, Server: server, DryRun: dryRun, Out: cmd.OutOrStdout(), BatchSize: batchSize}
			if err := d.Load(ctx); err != nil {
				return catalogExit(err)
			}
			if backupID != "" {
				cat := &catalog.Catalog{Bucket: b, Server: server}
				e, err := cat.Resolve(ctx, backupID)
				if err != nil {
					return withCode(ExitFailed, err)
				}
				return catalogExit(d.DeleteByID(ctx, e.ID, minRedundancy))
			}
			deleted, err := d.ApplyPolicy(ctx, pol, minRedundancy, time.Now())
			for _, id := range deleted {
				fmt.Fprintf(cmd.ErrOrStderr(), "deleted backup %s (obsolete under %s)\n", id, pol)
			}
			return catalogExit(err)
		},
	}
	fs := cmd.Flags()
	c.register(fs)
	fs.StringVarP(&backupID, "backup-id", "b", "", "Backup ID of the backup to be deleted")
	fs.StringVarP(&policy, "retention-policy", "r", "", "delete all backups eligible for deletion according to the supplied retention policy. Syntax: REDUNDANCY value | RECOVERY WINDOW OF value {DAYS | WEEKS | MONTHS}")
	fs.IntVarP(&minRedundancy, "minimum-redundancy", "m", 0, "The minimum number of backups that should always be available.")
	fs.BoolVar(&dryRun, "dry-run", false, "Find the objects which need to be deleted but do not delete them")
	fs.IntVar(&batchSize, "batch-size", 0, "The maximum number of objects to be deleted in a single request to the cloud provider (default: the provider's maximum)")
	fs.BoolVar(&checkLock, "check-object-lock", false, "accepted for compatibility; object lock checks are not performed")
	_ = fs.MarkHidden("check-object-lock")
	return cmd
}

// catalogExit maps catalog maintenance errors onto barman's exit codes.
func catalogExit(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, retention.ErrRefused):
		return withCode(ExitFailed, err)
	}
	return withCode(ExitGeneral, err)
}

func newBackupKeep() *cobra.Command {
	var (
		c       common
		release bool
		status  bool
		target  string
	)
	cmd := &cobra.Command{
		Use:   "backup-keep [options] SOURCE_URL SERVER_NAME BACKUP_ID",
		Short: "Flag a backup to be kept regardless of retention policy, release it, or show its keep status",
		Args:  positional(3, 3, "SOURCE_URL", "SERVER_NAME", "BACKUP_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			src, server, id := args[0], args[1], args[2]
			if err := validateServer(server); err != nil {
				return err
			}
			n := 0
			for _, on := range []bool{release, status, target != ""} {
				if on {
					n++
				}
			}
			if n != 1 {
				return withCode(ExitUsage, errors.New("give exactly one of -r/--release, -s/--status or --target full|standalone"))
			}
			if target != "" && target != catalog.KeepFull && target != catalog.KeepStandalone {
				return withCode(ExitUsage, fmt.Errorf("--target %q is not valid: use full or standalone", target))
			}
			b, answered, err := c.open(ctx, src, server, nil)
			if err != nil || answered {
				return err
			}
			defer b.Close()
			cat := &catalog.Catalog{Bucket: b, Server: server}
			e, err := cat.Resolve(ctx, id)
			if err != nil {
				return withCode(ExitFailed, err)
			}
			switch {
			case status:
				k, err := cat.Keep(ctx, e.ID)
				if err != nil {
					return withCode(ExitGeneral, err)
				}
				if k == "" {
					k = "nokeep"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Keep: %s\n", k)
				return nil
			case release:
				return withCode(ExitGeneral, cat.ReleaseKeep(ctx, e.ID))
			}
			if err := cat.SetKeep(ctx, e.ID, target); err != nil {
				return withCode(ExitFailed, err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	c.register(fs)
	fs.BoolVarP(&release, "release", "r", false, "If specified, the command will remove the keep annotation and the backup will be eligible for deletion")
	fs.BoolVarP(&status, "status", "s", false, "Print the keep status of the backup")
	fs.StringVar(&target, "target", "", "Specify the recovery target for this backup (full or standalone)")
	return cmd
}
