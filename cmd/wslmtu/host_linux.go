package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

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

// agentKeeps explains a state directory whose lock the agent holds: the
// agent keeps this host, so a fix or a revert would fight it. nil when err
// is something else.
func agentKeeps(err error, why string) error {
	var held *statefile.HeldError
	if !errors.As(err, &held) {
		return nil
	}
	return failureErr(fmt.Errorf("%s keeps this host (it holds %s), so %s", held.Holder, held.Path,
		strings.ReplaceAll(why, "PID", strconv.Itoa(held.PID))))
}

// Why fix and revert refuse while the agent runs, and what to do instead.
const (
	fixWhileAgent = "`wslmtu fix` would only fight it. To change what the agent does, edit its config (" + config.DefaultPath +
		", or the file its --config names) and run `sudo systemctl reload wslmtu` (without systemd: sudo kill -HUP PID); " +
		"`wslmtu fix --dry-run` and `wslmtu status` show the plan without changing anything"
	revertWhileAgent = "a revert would be undone at once. Stop the agent first (sudo systemctl stop wslmtu; without systemd: sudo kill PID), " +
		"then run `wslmtu revert`; or run `sudo wslmtu uninstall --revert`, which does both"
)

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
