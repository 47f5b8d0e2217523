package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/statefile"
)

// openHost gives the fix.Host of this machine; close it when done.
func openHost(cfg config.Config) (fix.Host, func(), error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return fix.Host{}, nil, failureErr(err)
	}
	host := fix.HostAt(h, detect.HostSources(), cfg.StateDir)
	host.OnWait = func(holder string) {
		fmt.Fprintf(os.Stderr, "wslmtu: waiting for %s, which holds the lock in %s (giving up after %s)…\n",
			holder, cfg.StateDir, statefile.DefaultLockTimeout)
	}
	return host, h.Close, nil
}

// withHost is the RunE of a command that works on this machine: it loads
// the config (flags over file) and opens the host for run.
func (c *cli) withHost(run func(cmd *cobra.Command, cfg config.Config, host fix.Host) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.loadConfig(cmd)
		if err != nil {
			return err
		}
		host, done, err := openHost(cfg)
		if err != nil {
			return err
		}
		defer done()
		return run(cmd, cfg, host)
	}
}

// classify gives bad input (a named interface that does not exist) the usage
// exit code and everything else the failure one.
func classify(err error) error {
	var notFound *detect.NotFoundError
	var pattern *detect.PatternError
	if errors.As(err, &notFound) || errors.As(err, &pattern) {
		return usageErr(err)
	}
	return failureErr(err)
}
