package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/doctor"
	"github.com/wslmtu/wslmtu/internal/probe"
	"github.com/wslmtu/wslmtu/windows"
)

func (c *cli) doctorCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Run every health check and print each with its remedy",
		Long: `Run every health check: WSL and its networking mode, the agent, the plan,
outer vs tunnel MTUs, MSS clamping, the tunnels' IPv6 addresses, the
tcp_timestamps look-alike, and Windows' adapters (through WSL interop).

Exits 3 when a check fails; warnings (!) and skipped checks (-) do not fail.`,
		Args: cobra.NoArgs,
		RunE: c.withHost(func(cmd *cobra.Command, cfg config.Config, host fix.Host) error {
			checks := doctor.Run(cmd.Context(), doctor.Inputs{
				Host:    host,
				Config:  cfg,
				Root:    os.DirFS("/"),
				Windows: windows.ExecRunner{},
				Verify: func(ctx context.Context, hosts []string, r fix.Report) []fix.PathCheck {
					if ctx == nil {
						ctx = context.Background()
					}
					return probe.Verify(ctx, hosts, r, probe.Config{})
				},
			})
			out := cmd.OutOrStdout()
			var err error
			if asJSON {
				err = doctor.WriteJSON(out, checks)
			} else {
				err = doctor.WriteText(out, checks)
			}
			if err != nil {
				return failureErr(err)
			}
			if n := doctor.Failed(checks); n > 0 {
				return unhealthy(fmt.Sprintf("%d of %d checks failed", n, len(checks)))
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the checks as JSON")
	return cmd
}
