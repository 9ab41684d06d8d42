package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/restore"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

func newRestore() *cobra.Command {
	var (
		c           common
		tablespaces []string
		sel         restore.Selection
		rt          restore.RecoveryTarget
		latest      bool
		jobs        int
		force       bool
		snapshot    string
	)
	cmd := &cobra.Command{
		Use:   "restore [options] SOURCE_URL SERVER_NAME BACKUP_ID RECOVERY_DIR",
		Short: "Restore a base backup from cloud storage into a data directory",
		Long: "Restore a base backup from cloud storage into RECOVERY_DIR, as barman-cloud-restore does. " +
			"BACKUP_ID is a backup ID, a backup name, latest, oldest, or auto (chosen by --target-time, " +
			"--target-lsn and --target-tli). With a --recovery-target-* option, --restore-command or " +
			"--recovery-target-latest, the recovery settings (recovery.signal and postgresql.auto.conf) are " +
			"written so that PostgreSQL replays archived WAL up to the target on its first start. " +
			"The restore_command runs with PostgreSQL's environment, which must hold the storage credentials.",
		Args: positional(4, 4, "SOURCE_URL", "SERVER_NAME", "BACKUP_ID", "RECOVERY_DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			src, server, backupID, dir := args[0], args[1], args[2], args[3]
			if err := validateServer(server); err != nil {
				return err
			}
			if snapshot != "" {
				return withCode(ExitUsage, errors.New("snapshot recovery is not supported by bcloud: omit --snapshot-recovery-instance"))
			}
			if jobs < 1 {
				return withCode(ExitUsage, fmt.Errorf("--jobs must be a positive integer, got %d", jobs))
			}
			if err := exclusive(cmd, "target-lsn", "target-time"); err != nil {
				return err
			}
			if err := exclusive(cmd, "recovery-target-time", "recovery-target-lsn", "recovery-target-name",
				"recovery-target-xid", "recovery-target-immediate", "recovery-target-latest"); err != nil {
				return err
			}
			reloc := map[string]string{}
			for _, t := range tablespaces {
				name, loc, ok := strings.Cut(t, ":")
				if !ok || name == "" || loc == "" {
					return withCode(ExitUsage, fmt.Errorf("--tablespace %q: use NAME:LOCATION", t))
				}
				reloc[name] = loc
			}
			recovery, err := recoveryTarget(cmd, &rt, latest, src, server, &c)
			if err != nil {
				return err
			}
			// auto without --target-* follows the recovery target, so that
			// the backup chosen ends before the point to recover to.
			if backupID == "auto" && sel.Time == "" && sel.LSN == "" && recovery != nil {
				sel.Time, sel.LSN = recovery.Time, recovery.LSN
			}
			opts, err := c.options()
			if err != nil {
				return err
			}
			b, err := openBucket(ctx, src, opts)
			if err != nil {
				return err
			}
			defer b.Close()
			if c.test {
				return connectivityTest(ctx, b, server)
			}
			entry, err := restore.Select(ctx, b, server, backupID, sel)
			switch {
			case errors.Is(err, restore.ErrBadSelection):
				return withCode(ExitUsage, err)
			case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrAmbiguous), errors.Is(err, storage.ErrNoBucket):
				return withCode(ExitFailed, err)
			case err != nil:
				return withCode(ExitGeneral, err)
			}
			prog := newProgress("restore", cmd.ErrOrStderr(), c.quiet > 0)
			err = restore.Restore(ctx, restore.Options{
				Bucket: b, Server: server, Backup: entry, Dest: dir, Tablespaces: reloc,
				Jobs: jobs, Force: force, Recovery: recovery, Progress: prog,
			})
			prog.Finish(err == nil)
			switch {
			case errors.Is(err, restore.ErrNotEmpty), errors.Is(err, restore.ErrMissingArchive):
				return withCode(ExitFailed, err)
			case err != nil:
				return withCode(ExitGeneral, err)
			}
			slog.InfoContext(ctx, "backup restored", "backupId", entry.ID, "destination", dir)
			return nil
		},
	}
	fs := cmd.Flags()
	c.register(fs)
	fs.StringArrayVar(&tablespaces, "tablespace", nil, "tablespace relocation rule (repeatable)")
	fs.Lookup("tablespace").Usage = "tablespace relocation rule NAME:LOCATION (repeatable)"
	fs.StringVar(&sel.TLI, "target-tli", "", "target timeline for choosing the backup with BACKUP_ID auto (a number or latest)")
	fs.StringVar(&sel.LSN, "target-lsn", "", "target LSN for choosing the backup with BACKUP_ID auto")
	fs.StringVar(&sel.Time, "target-time", "", "target time for choosing the backup with BACKUP_ID auto (YYYY-MM-DD HH:MM:SS.mmm)")
	fs.StringVar(&rt.Time, "recovery-target-time", "", "write recovery settings that stop replay at this time (recovery_target_time)")
	fs.StringVar(&rt.LSN, "recovery-target-lsn", "", "write recovery settings that stop replay at this LSN (recovery_target_lsn)")
	fs.StringVar(&rt.Name, "recovery-target-name", "", "write recovery settings that stop replay at this restore point (recovery_target_name)")
	fs.StringVar(&rt.XID, "recovery-target-xid", "", "write recovery settings that stop replay after this transaction (recovery_target_xid)")
	fs.BoolVar(&rt.Immediate, "recovery-target-immediate", false, "write recovery settings that stop replay as soon as the backup is consistent")
	fs.BoolVar(&latest, "recovery-target-latest", false, "write recovery settings that replay all archived WAL")
	fs.StringVar(&rt.Timeline, "recovery-target-timeline", "", "recovery_target_timeline (default: latest)")
	fs.StringVar(&rt.Action, "recovery-target-action", "", "recovery_target_action: promote, pause or shutdown (default: promote)")
	fs.BoolVar(&rt.Exclusive, "recovery-target-exclusive", false, "stop just before the time, LSN or xid target (recovery_target_inclusive = off)")
	fs.StringVar(&rt.RestoreCommand, "restore-command", "", "restore_command to write (default: this program's wal-restore with SOURCE_URL and SERVER_NAME)")
	fs.IntVarP(&jobs, "jobs", "J", restore.DefaultJobs, "number of archives downloaded and extracted concurrently")
	fs.BoolVar(&force, "force", false, "restore into non-empty directories, overwriting files")
	fs.StringVar(&snapshot, "snapshot-recovery-instance", "", "not supported by bcloud")
	_ = fs.MarkHidden("snapshot-recovery-instance")
	return cmd
}

// recoveryTarget returns the recovery settings to write, or nil when no
// recovery option was given.
func recoveryTarget(cmd *cobra.Command, rt *restore.RecoveryTarget, latest bool, src, server string, c *common) (*restore.RecoveryTarget, error) {
	set := latest
	for _, f := range []string{"recovery-target-time", "recovery-target-lsn", "recovery-target-name", "recovery-target-xid",
		"recovery-target-immediate", "recovery-target-timeline", "recovery-target-action", "recovery-target-exclusive", "restore-command"} {
		set = set || cmd.Flags().Changed(f)
	}
	if !set {
		return nil, nil
	}
	if rt.RestoreCommand == "" {
		cmdline, err := defaultRestoreCommand(src, server, c)
		if err != nil {
			return nil, withCode(ExitGeneral, err)
		}
		rt.RestoreCommand = cmdline
	}
	if err := rt.Validate(); err != nil {
		return nil, withCode(ExitUsage, err)
	}
	return rt, nil
}

// defaultRestoreCommand is "<this binary> wal-restore [options] SOURCE
// SERVER %f %p", with the storage options of this command.
func defaultRestoreCommand(src, server string, c *common) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program's path for restore_command (use --restore-command): %w", err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	args := []string{exe, "wal-restore"}
	if c.provider != "" {
		args = append(args, "--cloud-provider", c.provider)
	}
	if c.endpointURL != "" {
		args = append(args, "--endpoint-url", c.endpointURL)
	}
	if c.awsProfile != "" {
		args = append(args, "--aws-profile", c.awsProfile)
	}
	if c.readTimeout != 0 {
		args = append(args, "--read-timeout", strconv.Itoa(c.readTimeout))
	}
	if c.azureCredential != "" {
		args = append(args, "--azure-credential", c.azureCredential)
	}
	args = append(args, src, server)
	quoted := make([]string, len(args))
	for i, a := range args {
		// PostgreSQL expands %f, %p, %r and %% in restore_command.
		quoted[i] = strings.ReplaceAll(shellQuote(a), "%", "%%")
	}
	return strings.Join(quoted, " ") + " %f %p", nil
}

// shellQuote quotes s for /bin/sh when it holds anything but safe
// characters.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
