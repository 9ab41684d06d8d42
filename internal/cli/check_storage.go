package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

func newCheckStorage() *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "check-storage [options] DESTINATION_URL",
		Short: "Check that a destination supports everything bcloud needs, under a temporary prefix",
		Args:  positional(1, 1, "DESTINATION_URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			opts, err := c.options()
			if err != nil {
				return err
			}
			b, err := openBucket(ctx, args[0], opts)
			if err != nil {
				return err
			}
			defer b.Close()
			results := storage.Check(ctx, b, "")
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "STEP\tRESULT\tTIME\tDETAIL\n")
			failed := 0
			for _, r := range results {
				res, detail := "ok", ""
				if r.Err != nil {
					res, detail = "FAIL", oneLine(r.Err.Error())
					failed++
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Step, res, r.Duration.Round(1e6), detail)
			}
			_ = tw.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "driver: %s, destination: %s\n", b.Properties().Name, args[0])
			if failed > 0 {
				return withCode(ExitFailed, fmt.Errorf("%d of %d storage checks failed on %s", failed, len(results), args[0]))
			}
			return nil
		},
	}
	c.register(cmd.Flags())
	return cmd
}
