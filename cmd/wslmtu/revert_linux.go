package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/agent"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
)

func (c *cli) revertCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revert",
		Short: "Put back every MTU wslmtu changed, remove its MSS rules, and clear the record",
		Args:  cobra.NoArgs,
		RunE: c.withHost(func(cmd *cobra.Command, cfg config.Config, host fix.Host) error {
			reverted, err := host.Revert()
			out := cmd.OutOrStdout()
			for _, r := range reverted {
				fmt.Fprintln(out, r)
			}
			if err != nil {
				return failureErr(err)
			}
			if len(reverted) == 0 {
				fmt.Fprintln(out, "nothing to revert: wslmtu has changed nothing")
			}
			if st, _ := agent.ReadStatus(cfg.StateDir); st.Running {
				fmt.Fprintf(out, "note: the agent (pid %d) is running and will apply the plan again; "+
					"stop it first: sudo systemctl stop wslmtu (or wslmtu uninstall --revert)\n", st.PID)
			}
			return nil
		}),
	}
}
