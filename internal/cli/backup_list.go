package cli

import (
	"errors"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

func newBackupList() *cobra.Command {
	var (
		c      common
		format string
	)
	cmd := &cobra.Command{
		Use:   "backup-list [options] SOURCE_URL SERVER_NAME",
		Short: "List the backups of a server in cloud storage",
		Args:  positional(2, 2, "SOURCE_URL", "SERVER_NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			src, server := args[0], args[1]
			if err := validateServer(server); err != nil {
				return err
			}
			b, answered, err := c.open(ctx, src, server, nil)
			if err != nil || answered {
				return err
			}
			defer b.Close()
			cat := &catalog.Catalog{Bucket: b, Server: server}
			entries, err := cat.List(ctx)
			if err != nil {
				return catalogError(err)
			}
			for _, e := range entries {
				if e.Err != nil {
					slog.WarnContext(ctx, "unable to read backup info", "backupId", e.ID, "error", oneLine(e.Err.Error()))
				}
			}
			// barman: "console" is the default, any other value means JSON.
			if format != "console" {
				return catalog.RenderListJSON(cmd.OutOrStdout(), entries)
			}
			keep, err := cat.KeepAll(ctx)
			if err != nil {
				return catalogError(err)
			}
			return catalog.RenderListConsole(cmd.OutOrStdout(), entries, keep)
		},
	}
	c.register(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", "console", "Output format (console or json). Default console.")
	return cmd
}

func newBackupShow() *cobra.Command {
	var (
		c      common
		format string
	)
	cmd := &cobra.Command{
		Use:   "backup-show [options] SOURCE_URL SERVER_NAME BACKUP_ID",
		Short: "Show the details of one backup in cloud storage",
		Args:  positional(3, 3, "SOURCE_URL", "SERVER_NAME", "BACKUP_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			src, server, id := args[0], args[1], args[2]
			if err := validateServer(server); err != nil {
				return err
			}
			b, answered, err := c.open(ctx, src, server, nil)
			if err != nil || answered {
				return err
			}
			defer b.Close()
			cat := &catalog.Catalog{Bucket: b, Server: server}
			entry, err := cat.Resolve(ctx, id)
			if err != nil {
				return catalogError(err)
			}
			if format != "console" {
				return catalog.RenderShowJSON(cmd.OutOrStdout(), entry)
			}
			return catalog.RenderShowConsole(cmd.OutOrStdout(), entry)
		},
	}
	c.register(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", "console", "Output format (console or json). Default console.")
	return cmd
}

// catalogError maps catalog failures to barman's exit codes: a missing or
// ambiguous backup and a missing bucket exit 1, anything else 4.
func catalogError(err error) error {
	switch {
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrAmbiguous), errors.Is(err, storage.ErrNoBucket):
		return withCode(ExitFailed, err)
	}
	return withCode(ExitGeneral, err)
}
