package main

import (
	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/windows"
)

func newStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show which Windows adapter sets WSL's eth0 MTU, the distros, and the agent in each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := windows.Status(cmd.Context(), windows.ExecRunner{}, windows.IPHelper{})
			if err != nil {
				return failureErr(err)
			}
			if err := printResult(cmd.OutOrStdout(), asJSON, h, h.Format); err != nil {
				return err
			}
			if h.Unhealthy() {
				return unhealthy("an agent reported a problem: run `wslmtu fix` in that distro")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}
