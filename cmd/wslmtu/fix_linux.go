package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
)

func (c *cli) fixCmd() *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "fix",
		Short: "Print the plan and apply it (--dry-run: print only)",
		Long: `Print the plan and apply it.

On a host that is not WSL, nothing is changed unless --assume-wsl (or
assume_wsl = true) is given. Running fix twice changes nothing the second time.`,
		Args: cobra.NoArgs,
		RunE: c.withHost(func(cmd *cobra.Command, cfg config.Config, host fix.Host) error {
			out := cmd.OutOrStdout()
			if dryRun {
				r, err := host.Plan(cfg)
				if err != nil {
					return classify(err)
				}
				return printResult(out, asJSON, r, func(out io.Writer) {
					fmt.Fprint(out, r.Plan)
					if !r.Plan.Empty() && r.Plan.Refused == "" {
						fmt.Fprintln(out, "dry run: nothing was changed")
					}
				})
			}
			r, err := host.Fix(cfg)
			if keeps := agentKeeps(err, fixWhileAgent); keeps != nil {
				return keeps
			}
			if r.Plan.Strategy == "" { // nothing was observed, so nothing was planned
				return classify(err)
			}
			if perr := printResult(out, asJSON, r, func(out io.Writer) { fmt.Fprint(out, r.Outcome()) }); perr != nil {
				return perr
			}
			if err != nil {
				return failureErr(err)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
