package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/internal/probe"
)

func (c *cli) probeCmd() *cobra.Command {
	var (
		asJSON  bool
		timeout time.Duration
		only4   bool
		only6   bool
	)
	cmd := &cobra.Command{
		Use:   "probe HOST",
		Short: "Measure the largest packet that reaches HOST and whether fragments get through",
		Long: `Sends ICMP echoes of many sizes at once with don't-fragment set, refines
inside the bracket found, and tests whether a fragmented echo comes back.
Needs root or CAP_NET_RAW, or ping sockets allowed by net.ipv4.ping_group_range.
HOST is one host: not ::, 0.0.0.0, a multicast or broadcast address, nor a
link-local IPv6 address without its interface (fe80::1%eth0). The tunnels are
the config's (--tunnels), as for fix and status.

Exit codes: 0 the path carries the full MTU, 3 a problem was found,
1 the path could not be measured (no answer, no socket), 2 bad arguments.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := probe.CheckTimeout(timeout); err != nil {
				return usageErr(fmt.Errorf("--timeout: %w", err))
			}
			if only4 && only6 {
				return usageErr(errors.New("-4 and -6 exclude each other"))
			}
			cfg, err := c.loadConfig(cmd)
			if err != nil {
				return err
			}
			opts := probe.Options{Config: probe.Config{Timeout: timeout}}
			if only4 {
				opts.Family = 4
			}
			if only6 {
				opts.Family = 6
			}
			if !asJSON {
				opts.Progress = cmd.ErrOrStderr()
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			res, err := probe.Run(ctx, args[0], cfg, opts)
			if errors.Is(err, probe.ErrBadHost) || errors.Is(err, probe.ErrBadTimeout) {
				return usageErr(err)
			}
			if err != nil {
				return classify(err) // a tunnel pattern that selects the outer interface is bad input too
			}
			if err := printResult(cmd.OutOrStdout(), asJSON, res, func(out io.Writer) { fmt.Fprint(out, res) }); err != nil {
				return err
			}
			switch {
			case res.Verdict.Problem():
				return unhealthy(fmt.Sprintf("probe %s: %s", args[0], res.Verdict))
			case res.Verdict == probe.VerdictNoAnswer:
				return failureErr(fmt.Errorf("probe %s: %s", args[0], res.Verdict))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", probe.DefaultTimeout, fmt.Sprintf("how long each round waits for replies, and the host name's resolution for an answer (%s to %s)", probe.MinTimeout, probe.MaxTimeout))
	cmd.Flags().BoolVarP(&only4, "ipv4", "4", false, "probe over IPv4 only")
	cmd.Flags().BoolVarP(&only6, "ipv6", "6", false, "probe over IPv6 only")
	return cmd
}
