package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/windows"
)

func init() { rootCmd.AddCommand(newStatusCmd()) }

func newStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show which Windows adapter sets WSL's eth0 MTU, the distros, and the agent in each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := windows.Status(cmd.Context(), windows.ExecRunner{})
			if err != nil {
				return failureErr(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(h); err != nil {
					return failureErr(err)
				}
			} else {
				h.Format(out)
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
