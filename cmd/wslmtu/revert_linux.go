package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
)

func (c *cli) revertCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revert",
		Short: "Put back every MTU, route and rule wslmtu changed, remove its MSS rules, and clear the record",
		Args:  cobra.NoArgs,
		RunE: c.withHost(func(cmd *cobra.Command, cfg config.Config, host fix.Host) error {
			reverted, found, err := host.Revert()
			if keeps := agentKeeps(err, revertWhileAgent); keeps != nil {
				return keeps
			}
			out := cmd.OutOrStdout()
			for _, r := range reverted {
				fmt.Fprintln(out, r)
			}
			if err != nil {
				return failureErr(err)
			}
			switch {
			case !found && len(reverted) == 0:
				fmt.Fprintf(out, "nothing to revert: there is no revert record in %s (wslmtu changed nothing here, or the record was lost); "+
					"the MTUs now: %s\n", cfg.StateDir, mtusNow(host))
			case len(reverted) == 0:
				fmt.Fprintln(out, "nothing to revert: the revert record lists no changes")
			}
			return nil
		}),
	}
}

// mtusNow lists the interfaces and their MTUs, for a user who has to judge
// by hand what to put back.
func mtusNow(host fix.Host) string {
	links, err := host.Links.Links()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var parts []string
	for _, l := range links {
		if l.Name != "lo" {
			parts = append(parts, fmt.Sprintf("%s %d", l.Name, l.MTU))
		}
	}
	return strings.Join(parts, ", ")
}
