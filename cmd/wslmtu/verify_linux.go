package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/probe"
)

func (c *cli) verifyCmd() *cobra.Command {
	var (
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify [HOST...]",
		Short: "Prove each host's path: DF echoes of exactly the size it must carry",
		Long: `For each HOST (else the config's verify list), the kernel's route says which
interface the path takes and the plan in force which size it must carry: the
tunnel's MTU through a tunnel, what Windows chose outside it, what the MSS
clamp assumes where clamping is the remedy. DF echoes of exactly that size
are sent; when they do not come back, the largest that does is searched, and
the likely side of the fault named (the Windows adapter, the tunnel peer,
our own rules, or a fix not yet applied). The agent and doctor run the same
check. Needs root or CAP_NET_RAW, or ping sockets allowed.

Exit codes: 0 every path carries what it must, 1 a path is broken or could
not be checked, 2 bad arguments (or no host given and none configured).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := probe.CheckTimeout(timeout); err != nil {
				return usageErr(fmt.Errorf("--timeout: %w", err))
			}
			cfg, err := c.loadConfig(cmd)
			if err != nil {
				return err
			}
			if len(args) > 0 {
				cfg.Verify = args
				if err := cfg.Validate(); err != nil {
					return usageErr(fmt.Errorf("HOST: %w", err))
				}
			}
			if len(cfg.Verify) == 0 {
				return usageErr(fmt.Errorf("no host to verify: name one, or set verify in %s", c.configPath))
			}
			host, done, err := openHost(cfg)
			if err != nil {
				return err
			}
			defer done()
			return runVerify(cmd, cfg, host, timeout, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", probe.DefaultTimeout, fmt.Sprintf("how long each round waits for replies (%s to %s)", probe.MinTimeout, probe.MaxTimeout))
	return cmd
}

func runVerify(cmd *cobra.Command, cfg config.Config, host fix.Host, timeout time.Duration, asJSON bool) error {
	r, err := host.Plan(cfg)
	if err != nil {
		return classify(err)
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	results := probe.Verify(ctx, cfg.Verify, r, probe.Config{Timeout: timeout})
	if err := printResult(cmd.OutOrStdout(), asJSON, results, func(out io.Writer) { printPaths(out, results) }); err != nil {
		return err
	}
	if err := probe.VerifyError(results); err != nil {
		return failureErr(err)
	}
	return nil
}

// printPaths is the per-host block verify and doctor print.
func printPaths(out io.Writer, results []probe.PathResult) {
	for _, p := range results {
		fmt.Fprintf(out, "%s (%s)\n", p.Host, p.Address)
		if p.Verdict == fix.PathError {
			fmt.Fprintf(out, "  verdict     cannot check: %s\n", p.Evidence)
			continue
		}
		fmt.Fprintf(out, "  interface   %s\n", p.Interface)
		fmt.Fprintf(out, "  must carry  %d bytes (%s)\n", p.Size, p.Why)
		if p.Largest >= 0 {
			fmt.Fprintf(out, "  crossed     %d bytes\n", p.Largest)
		} else {
			fmt.Fprintln(out, "  crossed     nothing")
		}
		fmt.Fprintf(out, "  verdict     %s: %s\n", p.Verdict, p.Evidence)
		if p.Side != "" {
			fmt.Fprintf(out, "  likely side %s\n", p.Side)
		}
	}
}
