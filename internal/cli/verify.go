package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/verify"
)

func newVerify() *cobra.Command {
	var (
		c      common
		format string
		jobs   int
	)
	cmd := &cobra.Command{
		Use:   "verify [options] SOURCE_URL SERVER_NAME [BACKUP_ID]",
		Short: "Check that backups read back complete and that the WAL from each to the newest archived point has no gap",
		Args:  positional(2, 3, "SOURCE_URL", "SERVER_NAME", "BACKUP_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			src, server := args[0], args[1]
			if err := validateServer(server); err != nil {
				return err
			}
			if format != "console" && format != "json" {
				return withCode(ExitUsage, fmt.Errorf("--format %q is not valid: use console or json", format))
			}
			b, answered, err := c.open(ctx, src, server, nil)
			if err != nil || answered {
				return err
			}
			defer b.Close()
			vo := verify.Options{Bucket: b, Server: server, Jobs: jobs}
			if len(args) == 3 {
				e, err := (&catalog.Catalog{Bucket: b, Server: server}).Resolve(ctx, args[2])
				if err != nil {
					return withCode(ExitFailed, err)
				}
				vo.BackupID = e.ID
			}
			rep, err := verify.Run(ctx, vo)
			if err != nil {
				return withCode(ExitGeneral, err)
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printReport(cmd.OutOrStdout(), rep)
			}
			if !rep.OK() {
				return withCode(ExitFailed, quiet{fmt.Errorf("%d problem(s) found", len(rep.Problems))})
			}
			return nil
		},
	}
	fs := cmd.Flags()
	c.register(fs)
	fs.StringVar(&format, "format", "console", "Output format (console or json)")
	fs.IntVarP(&jobs, "jobs", "J", 4, "number of objects read at once")
	return cmd
}

func printReport(w io.Writer, rep *verify.Report) {
	if len(rep.Backups) == 0 {
		fmt.Fprintf(w, "server %s: no DONE backup to verify\n", rep.Server)
	}
	for _, b := range rep.Backups {
		state := "OK"
		if !b.OK {
			state = "BROKEN"
		}
		fmt.Fprintf(w, "backup %s: %s (%d archives, %d members, %s)\n", b.ID, state, b.Archives, b.Members, humanBytes(b.Bytes))
	}
	if rep.WAL.Segments > 0 {
		state := "OK"
		if !rep.WAL.OK {
			state = "BROKEN"
		}
		tl := make([]string, len(rep.WAL.Timelines))
		for i, t := range rep.WAL.Timelines {
			tl[i] = fmt.Sprint(t)
		}
		fmt.Fprintf(w, "WAL %s .. %s (timelines %s): %d segments %s\n", rep.WAL.From, rep.WAL.To, strings.Join(tl, " -> "), rep.WAL.Segments, state)
	}
	if rep.OK() {
		fmt.Fprintln(w, "verify: everything needed to restore is present and readable")
		return
	}
	fmt.Fprintf(w, "verify: %d problem(s):\n", len(rep.Problems))
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  %-10s %s: %s\n", strings.ToUpper(p.Kind), p.Object, p.Detail)
	}
}
