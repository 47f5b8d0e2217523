package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/agent"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/metrics"
)

func (c *cli) statusCmd() *cobra.Command {
	var asJSON, asProm bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the environment, interfaces, tunnels, the plan, and whether all is healthy",
		Long: `Show the environment, interfaces, tunnels, the plan, the agent's counters,
and whether all is healthy (exit 3 when not).

With --prom it prints the same as the agent's metrics_file, once, in the
Prometheus text format.`,
		Args: cobra.NoArgs,
		RunE: c.withHost(func(cmd *cobra.Command, cfg config.Config, host fix.Host) error {
			if asJSON && asProm {
				return usageErr(errors.New("--json and --prom exclude each other"))
			}
			r, err := host.Plan(cfg)
			if err != nil {
				return classify(err)
			}
			healthy := r.Settled()
			agentStatus, agentErr := agent.ReadStatus(cfg.StateDir)
			if asProm {
				if agentErr != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "wslmtu: agent: cannot read its counters:", agentErr)
				}
				err = printProm(cmd.OutOrStdout(), agentStatus.Snapshot(c.version(), agentStatus.Running, r))
			} else {
				err = printStatus(cmd.OutOrStdout(), asJSON, r, healthy, agentStatus, agentErr)
			}
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
	cmd.Flags().BoolVar(&asProm, "prom", false, "print the agent's metrics in the Prometheus text format")
	return cmd
}

func printStatus(out io.Writer, asJSON bool, r fix.Report, healthy bool, agentStatus agent.Status, agentErr error) error {
	result := struct {
		Healthy bool         `json:"healthy"`
		Report  fix.Report   `json:"report"`
		Agent   agent.Status `json:"agent"`
	}{healthy, r, agentStatus}
	return printResult(out, asJSON, result, func(out io.Writer) {
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
}

func printProm(out io.Writer, s metrics.Snapshot) error {
	text, err := metrics.Text(s)
	if err != nil {
		return failureErr(err)
	}
	if _, err := out.Write(text); err != nil {
		return failureErr(err)
	}
	return nil
}
