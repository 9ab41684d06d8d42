package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

func newWALArchive() *cobra.Command {
	var (
		c                              common
		comp                           compression
		tags, historyTags              tagFlags
		encryption, kmsKey, encScope   string
		gcsKMSKey                      string
		maxParallel                    int
		spoolDir                       string
		overwrite                      bool
		maxBlockSize, maxSinglePutSize string
		maxConcurrency                 int
	)
	cmd := &cobra.Command{
		Use:   "wal-archive [options] DESTINATION_URL SERVER_NAME WAL_PATH",
		Short: "Archive a WAL file to cloud storage (archive_command)",
		Args:  positional(3, 3, "DESTINATION_URL", "SERVER_NAME", "WAL_PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			dest, server, walPath := args[0], args[1], args[2]
			if err := validateServer(server); err != nil {
				return err
			}
			if _, err := wal.Classify(filepath.Base(walPath)); err != nil {
				return withCode(ExitUsage, fmt.Errorf("%s is not a WAL file name: pass %%p from archive_command", walPath))
			}
			algo, lvl, err := comp.algorithm()
			if err != nil {
				return err
			}
			t, err := tags.parse()
			if err != nil {
				return err
			}
			ht, err := historyTags.parse()
			if err != nil {
				return err
			}
			opts, err := c.options()
			if err != nil {
				return err
			}
			opts.Encryption, opts.SSEKMSKeyID, opts.EncryptionScope, opts.KMSKeyName = encryption, kmsKey, encScope, gcsKMSKey
			b, err := openBucket(ctx, dest, opts)
			if err != nil {
				return err
			}
			defer b.Close()
			if c.test {
				return connectivityTest(ctx, b, server)
			}
			a := &wal.Archiver{Bucket: b, Server: server, Compression: algo, Level: lvl, Tags: t, HistoryTags: ht, Overwrite: overwrite}
			var spool *wal.Spool
			if maxParallel > 1 {
				if spoolDir == "" {
					spoolDir = wal.SpoolDirFor(walPath)
				}
				if spool, err = wal.OpenSpool(spoolDir); err != nil {
					return withCode(ExitGeneral, err)
				}
			}
			if err := a.Batch(ctx, walPath, maxParallel, spool); err != nil {
				return withCode(ExitGeneral, fmt.Errorf("archive %s: %w", filepath.Base(walPath), err))
			}
			return nil
		},
	}
	fs := cmd.Flags()
	c.register(fs)
	comp.register(fs)
	tags.register(fs, "tag", "tags to be added to all uploaded files in cloud storage")
	historyTags.register(fs, "history-tag", "tags to be added to archived history files in cloud storage")
	fs.StringVarP(&encryption, "encryption", "e", "", "the encryption algorithm used when storing the uploaded data in S3 (AES256, aws:kms)")
	fs.StringVar(&kmsKey, "sse-kms-key-id", "", "the AWS KMS key ID that should be used for encrypting the uploaded data in S3 (with --encryption aws:kms)")
	fs.StringVar(&encScope, "encryption-scope", "", "the name of an encryption scope defined in the Azure Blob Storage service")
	fs.StringVar(&gcsKMSKey, "kms-key-name", "", "the name of the GCP KMS key which should be used for encrypting the uploaded data in GCS")
	fs.IntVar(&maxParallel, "max-parallel", 1, "archive up to N ready WAL files at once: the requested one plus N-1 others from pg_wal/archive_status")
	fs.StringVar(&spoolDir, "spool-dir", "", "directory recording files archived ahead of PostgreSQL's request (default: a per-server directory under the system temp dir)")
	fs.BoolVar(&overwrite, "overwrite", false, "replace an archived WAL file whose content differs instead of failing")
	// Azure upload tuning of barman-cloud; bcloud sizes blocks itself.
	fs.StringVar(&maxBlockSize, "max-block-size", "", "accepted for compatibility; bcloud sizes Azure blocks itself")
	fs.IntVar(&maxConcurrency, "max-concurrency", 0, "accepted for compatibility")
	fs.StringVar(&maxSinglePutSize, "max-single-put-size", "", "accepted for compatibility")
	for _, f := range []string{"max-block-size", "max-concurrency", "max-single-put-size"} {
		_ = fs.MarkHidden(f)
	}
	return cmd
}

func newWALRestore() *cobra.Command {
	var (
		c           common
		noPartial   bool
		maxParallel int
		spoolDir    string
	)
	cmd := &cobra.Command{
		Use:   "wal-restore [options] SOURCE_URL SERVER_NAME WAL_NAME WAL_DEST",
		Short: "Restore a WAL file from cloud storage (restore_command)",
		Args:  positional(4, 4, "SOURCE_URL", "SERVER_NAME", "WAL_NAME", "WAL_DEST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			src, server, name, dest := args[0], args[1], args[2], args[3]
			if err := validateServer(server); err != nil {
				return err
			}
			if _, err := wal.Classify(name); err != nil {
				return withCode(ExitUsage, fmt.Errorf("%s is not a WAL file name: pass %%f from restore_command", name))
			}
			b, answered, err := c.open(ctx, src, server, nil)
			if err != nil || answered {
				return err
			}
			defer b.Close()
			r := &wal.Restorer{Bucket: b, Server: server, NoPartial: noPartial}
			if maxParallel > 1 {
				if spoolDir == "" {
					spoolDir = wal.SpoolDirFor(dest)
				}
				spool, err := wal.OpenSpool(spoolDir)
				if err != nil {
					return withCode(ExitGeneral, err)
				}
				err = (&wal.Prefetcher{Restorer: r, Spool: spool, MaxParallel: maxParallel}).Restore(ctx, name, dest)
				return restoreExit(ctx, name, server, err)
			}
			return restoreExit(ctx, name, server, r.Restore(ctx, name, dest))
		},
	}
	fs := cmd.Flags()
	c.register(fs)
	fs.BoolVar(&noPartial, "no-partial", false, "Do not download partial WAL files")
	fs.IntVar(&maxParallel, "max-parallel", 1, "download up to N files at once: the requested segment plus the N-1 that follow, kept in the spool")
	fs.StringVar(&spoolDir, "spool-dir", "", "directory holding prefetched WAL files (default: a per-server directory under the system temp dir)")
	return cmd
}

func restoreExit(ctx context.Context, name, server string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wal.ErrNotFound):
		// barman-cloud logs this at INFO and exits 1: PostgreSQL asks for
		// files that do not exist yet all the time.
		slog.InfoContext(ctx, "WAL file not in the archive", "walName", name, "serverName", server)
		return withCode(ExitFailed, quiet{err})
	case errors.Is(err, wal.ErrInvalidName):
		return withCode(ExitUsage, err)
	case errors.Is(err, storage.ErrNoBucket):
		return withCode(ExitGeneral, err)
	}
	return withCode(ExitGeneral, err)
}

func newCheckWALArchive() *cobra.Command {
	var (
		c        common
		timeline int
	)
	cmd := &cobra.Command{
		Use:   "check-wal-archive [options] DESTINATION_URL SERVER_NAME",
		Short: "Check that the WAL archive destination is safe to use for a new server",
		Args:  positional(2, 2, "DESTINATION_URL", "SERVER_NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			dest, server := args[0], args[1]
			if err := validateServer(server); err != nil {
				return err
			}
			if timeline < 0 {
				return withCode(ExitUsage, fmt.Errorf("--timeline must be a positive integer, got %d", timeline))
			}
			opts, err := c.options()
			if err != nil {
				return err
			}
			b, err := openBucket(ctx, dest, opts)
			if err != nil {
				return err
			}
			defer b.Close()
			if err := connectivityTest(ctx, b, server); err != nil || c.test {
				var ee *exitError
				if errors.As(err, &ee) && ee.code == ExitFailed {
					return withCode(ExitFailed, fmt.Errorf("WAL archive check failed for server %s: %w", server, err))
				}
				return err
			}
			if err := wal.CheckEmpty(ctx, b, server, uint32(timeline)); err != nil {
				if errors.Is(err, wal.ErrArchiveNotEmpty) {
					return withCode(ExitFailed, fmt.Errorf("WAL archive check failed for server %s: %w", server, err))
				}
				return withCode(ExitNetwork, err)
			}
			return nil
		},
	}
	c.register(cmd.Flags())
	cmd.Flags().IntVar(&timeline, "timeline", 0, "The earliest timeline whose WALs should cause the check to fail")
	return cmd
}

// quiet marks an error that was already logged and needs no ERROR line.
type quiet struct{ error }

func (q quiet) Unwrap() error { return q.error }
