package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/internal/config"

	"github.com/wslmtu/wslmtu/agent"
	"github.com/wslmtu/wslmtu/fix"
)

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the environment, interfaces, tunnels, the plan, and whether all is healthy",
		Args:  cobra.NoArgs,
		RunE: withHost(func(cmd *cobra.Command, cfg config.Config, host fix.Host) error {
			r, err := host.Plan(cfg)
			if err != nil {
				return classify(err)
			}
			healthy := r.Healthy() || r.Plan.Refused != ""
			agentStatus, agentErr := agent.ReadStatus(cfg.StateDir)
			result := struct {
				Healthy bool         `json:"healthy"`
				Report  fix.Report   `json:"report"`
				Agent   agent.Status `json:"agent"`
			}{healthy, r, agentStatus}
			err = printResult(cmd.OutOrStdout(), asJSON, result, func(out io.Writer) {
				fmt.Fprint(out, r)
				if agentErr != nil {
					fmt.Fprintln(out, "agent: cannot read its counters:", agentErr)
				} else {
					fmt.Fprintln(out, agentStatus)
				}
				switch {
				case r.Plan.Refused != "":
					fmt.Fprintln(out, "not managed: wslmtu changes nothing on this host")
				case healthy:
					fmt.Fprintln(out, "healthy")
				default:
					fmt.Fprintln(out, "unhealthy: run `wslmtu fix` to apply the plan (or install the agent to keep it applied)")
				}
			})
			if err != nil {
				return err
			}
			if !healthy {
				return &exitError{code: exitUnhealthy}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	rootCmd.AddCommand(cmd)
}
