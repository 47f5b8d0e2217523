package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
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
			agentStatus, agentErr := agentstatus.Read(cfg.StateDir)
			if agentErr == nil && agentStatus.Running {
				// The agent's path checks judge the host too; status sends nothing.
				r.Paths = agentStatus.Paths
			}
			health := r.Health()
			if asProm {
				if agentErr != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "wslmtu: agent: cannot read its counters:", agentErr)
				}
				err = printProm(cmd.OutOrStdout(), agentStatus.Snapshot(c.version(), agentStatus.Running, r))
			} else {
				err = printStatus(cmd.OutOrStdout(), asJSON, r, health, agentStatus, agentErr)
			}
			if err != nil {
				return err
			}
			if !health.Healthy {
				return &exitError{code: exitUnhealthy}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().BoolVar(&asProm, "prom", false, "print the agent's metrics in the Prometheus text format")
	return cmd
}

func printStatus(out io.Writer, asJSON bool, r fix.Report, health fix.Health, agentStatus agentstatus.Status, agentErr error) error {
	result := struct {
		Healthy bool               `json:"healthy"`
		Health  fix.Health         `json:"health"`
		Report  fix.Report         `json:"report"`
		Agent   agentstatus.Status `json:"agent"`
	}{health.Healthy, health, r, agentStatus}
	return printResult(out, asJSON, result, func(out io.Writer) {
		fmt.Fprint(out, r)
		if agentErr != nil {
			fmt.Fprintln(out, "agent: cannot read its counters:", agentErr)
		} else {
			fmt.Fprintln(out, agentStatus)
		}
		fmt.Fprint(out, health)
		if r.RecordErr == "" && (len(r.Plan.Changes()) > 0 || r.Plan.MSS.NeedsChange()) {
			fmt.Fprint(out, " (run `wslmtu fix` to apply the plan, or install the agent to keep it applied)")
		}
		fmt.Fprintln(out)
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
