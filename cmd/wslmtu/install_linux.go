package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/systemd"
)

// ---- HOOKS (lead: adjust the wiring here; systemd.Install/Uninstall only
// take plain funcs) ----------------------------------------------------------

// installIsWSL tells `install` whether the host is WSL, asked only when
// systemd is not PID 1 (then the agent goes into /etc/wsl.conf [boot]).
// --assume-wsl (root flag) overrides it.
var installIsWSL = func(*cobra.Command) bool {
	return detect.DetectEnvironment(detect.HostSources(), nil).WSL
}

// installRevert undoes the agent's fixes for `uninstall --revert`, after the
// agent has been stopped. nil makes --revert a usage error.
var installRevert = func(cmd *cobra.Command) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	host, done, err := openHost(cfg)
	if err != nil {
		return err
	}
	defer done()
	_, err = host.Revert()
	return err
}

// ----------------------------------------------------------------------------

func init() {
	rootCmd.AddCommand(newInstallCmd(), newUninstallCmd())
}

func newInstallCmd() *cobra.Command {
	var binary string
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install and start the agent as a systemd service (or, on WSL without systemd, from /etc/wsl.conf)",
		Long: "Installs wslmtu.service (Type=notify, watchdog, sandboxed) and starts it; run again to update and restart.\n" +
			"On WSL without systemd it adds the agent to the [boot] command of /etc/wsl.conf and starts it now.\n" +
			"Anywhere else without systemd it refuses.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := systemd.Options{
				Binary: binary,
				Out:    cmd.OutOrStdout(),
				IsWSL:  func() bool { return flags.assumeWSL || (installIsWSL != nil && installIsWSL(cmd)) },
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
	return cmd
}

func newUninstallCmd() *cobra.Command {
	var binary string
	var revert bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop the agent and remove its service (or its /etc/wsl.conf boot command)",
		Long:  "Stops the agent, then removes wslmtu.service or the agent's part of the /etc/wsl.conf [boot] command.\nWith --revert it also puts back every MTU and rule the agent changed.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := systemd.Options{Binary: binary, Out: cmd.OutOrStdout()}
			if revert {
				if installRevert == nil {
					return usageErr(errors.New("--revert is not available in this build"))
				}
				o.Revert = func() error { return installRevert(cmd) }
			}
			if err := systemd.Uninstall(o); err != nil {
				return failureErr(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", systemd.DefaultBinary, "the installed wslmtu binary")
	cmd.Flags().BoolVar(&revert, "revert", false, "also revert the agent's fixes (MTUs, MSS rules)")
	return cmd
}
