package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/windows"
)

func newDropsCmd() *cobra.Command {
	var (
		duration time.Duration
		asJSON   bool
		keep     bool
	)
	cmd := &cobra.Command{
		Use:   "drops",
		Short: "Capture dropped packets with pktmon and tell whether Hyper-V drops the tunnel's IP fragments (needs admin)",
		Long: "Runs pktmon for --duration (it removes existing pktmon filters first), then counts drops per reason " +
			"and per component. Reproduce the hang (e.g. load the big page) while it runs.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if duration <= 0 {
				return usageErr(fmt.Errorf("--duration %s: must be positive", duration))
			}
			dir, err := os.MkdirTemp("", "wslmtu-drops-")
			if err != nil {
				return failureErr(err)
			}
			if !keep {
				defer os.RemoveAll(dir)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "capturing drops for %s: reproduce the problem now…\n", duration)
			rep, err := windows.Drops(cmd.Context(), windows.ExecRunner{}, windows.DropsOptions{
				Duration: duration,
				ETLPath:  filepath.Join(dir, "wslmtu.etl"),
				TextPath: filepath.Join(dir, "wslmtu.txt"),
			})
			if err != nil {
				return failureErr(err)
			}
			err = printResult(cmd.OutOrStdout(), asJSON, rep, func(out io.Writer) {
				rep.Format(out)
				if keep {
					fmt.Fprintln(out, "pktmon logs kept in", dir)
				}
			})
			if err != nil {
				return err
			}
			if rep.Summary.FragmentsDropped() {
				return unhealthy("IP fragments are being dropped")
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&duration, "duration", 30*time.Second, "how long to capture")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep pktmon's .etl and .txt logs")
	return cmd
}
