package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/systemd"
)

// isWSLForInstall is asked only when systemd is not PID 1 (then the agent
// goes into /etc/wsl.conf [boot]); assume_wsl (flag or config) overrides it.
func (c *cli) isWSLForInstall(cmd *cobra.Command) bool {
	if cfg, err := c.loadConfig(cmd); err == nil && cfg.AssumeWSL {
		return true
	}
	return detect.DetectEnvironment(detect.HostSources(), nil).WSL
}

// revertForUninstall undoes the agent's fixes, after the agent has stopped.
func (c *cli) revertForUninstall(cmd *cobra.Command) error {
	return c.withHost(func(cmd *cobra.Command, cfg config.Config, host fix.Host) error {
		reverted, _, err := host.Revert()
		for _, r := range reverted {
			fmt.Fprintln(cmd.OutOrStdout(), r)
		}
		return err
	})(cmd, nil)
}

func (c *cli) installCmd() *cobra.Command {
	var binary string
	var packaged bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install and start the agent as a systemd service (or, on WSL without systemd, from /etc/wsl.conf)",
		Long: "Installs wslmtu.service (Type=notify, watchdog, sandboxed) and starts it; run again to update and restart.\n" +
			"On WSL without systemd it adds the agent to the [boot] command of /etc/wsl.conf and starts it now.\n" +
			"Anywhere else without systemd it refuses.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := systemd.Options{
				Binary:   packagedBinary(cmd, binary, packaged),
				Out:      cmd.OutOrStdout(),
				IsWSL:    func() bool { return c.isWSLForInstall(cmd) },
				Packaged: packaged,
			}
			if err := systemd.Install(o); err != nil {
				if errors.Is(err, systemd.ErrUnsupported) {
					return usageErr(err)
				}
				return failureErr(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", systemd.DefaultBinary, "the installed wslmtu binary the service runs")
	addPackagedFlag(cmd, &packaged)
	return cmd
}

// addPackagedFlag adds --packaged, for the .deb's and .rpm's maintainer
// scripts: the unit is the package's (/lib/systemd/system), the binary
// /usr/bin/wslmtu.
func addPackagedFlag(cmd *cobra.Command, packaged *bool) {
	cmd.Flags().BoolVar(packaged, "packaged", false, "called by the package's maintainer scripts")
	_ = cmd.Flags().MarkHidden("packaged")
}

// packagedBinary is --binary, or the package's binary with --packaged.
func packagedBinary(cmd *cobra.Command, binary string, packaged bool) string {
	if packaged && !cmd.Flags().Changed("binary") {
		return systemd.PackagedBinary
	}
	return binary
}

func (c *cli) uninstallCmd() *cobra.Command {
	var binary string
	var revert, packaged bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop the agent and remove its service (or its /etc/wsl.conf boot command)",
		Long:  "Stops the agent, then removes wslmtu.service or the agent's part of the /etc/wsl.conf [boot] command.\nWith --revert it also puts back every MTU and rule the agent changed.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := systemd.Options{Binary: packagedBinary(cmd, binary, packaged), Out: cmd.OutOrStdout(), Packaged: packaged}
			if revert {
				o.Revert = func() error { return c.revertForUninstall(cmd) }
			}
			if err := systemd.Uninstall(o); err != nil {
				return failureErr(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", systemd.DefaultBinary, "the installed wslmtu binary")
	cmd.Flags().BoolVar(&revert, "revert", false, "also revert the agent's fixes (MTUs, MSS rules)")
	addPackagedFlag(cmd, &packaged)
	return cmd
}
