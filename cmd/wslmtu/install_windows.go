package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/windows"
)

func addServiceFlags(cmd *cobra.Command, cfg *windows.ServiceConfig) {
	cmd.Flags().StringVar(&cfg.Distro, "distro", "", "WSL2 distro to keep running (default: the default distro)")
	cmd.Flags().BoolVar(&cfg.RunAgent, "run-agent", false, "run `wslmtu run` as the keep-alive (for distros without systemd)")
}

func newInstallCmd() *cobra.Command {
	var (
		cfg        windows.ServiceConfig
		user, pass string
	)
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install the Windows service that keeps a distro running and re-runs `wslmtu fix` after network changes (needs admin)",
		Long: "The service runs as your account, because WSL distros are registered per user. " +
			"Give the password with --password or WSLMTU_SERVICE_PASSWORD; the account needs the " +
			"\"Log on as a service\" right (secpol.msc, or set it once in services.msc).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pass == "" {
				pass = os.Getenv("WSLMTU_SERVICE_PASSWORD")
			}
			if user == "" {
				return usageErr(fmt.Errorf("--user: cannot tell the current user; pass DOMAIN\\name"))
			}
			// Check the distro now, so a typo is a usage error here and not
			// a service that fails at boot.
			out, err := windows.ExecRunner{}.Run(cmd.Context(), "wsl.exe", "--list", "--verbose")
			if err != nil {
				return failureErr(fmt.Errorf("list WSL distros: %w", err))
			}
			distros, err := windows.ParseDistros(out)
			if err != nil {
				return failureErr(err)
			}
			plan, err := windows.PlanService(distros, cfg)
			if err != nil {
				return usageErr(err)
			}
			if err := windows.Install(windows.InstallOptions{Config: cfg, User: user, Password: pass}); err != nil {
				return failureErr(err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "installed and started service %q as %s\n", windows.ServiceName, user)
			fmt.Fprintf(w, "  keeps %s running: %s\n", plan.Distro, plan.KeepAlive)
			fmt.Fprintf(w, "  after host network changes: %s\n", plan.OnNetworkChange)
			return nil
		},
	}
	addServiceFlags(cmd, &cfg)
	cmd.Flags().StringVar(&user, "user", windows.DefaultUser(), "account the service runs as (DOMAIN\\name)")
	cmd.Flags().StringVar(&pass, "password", "", "that account's password (or WSLMTU_SERVICE_PASSWORD)")
	return cmd
}

func newUninstallCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "uninstall",
		Short: "Stop and remove the Windows service (needs admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := windows.Uninstall(); err != nil {
				return failureErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed service %q\n", windows.ServiceName)
			return nil
		},
	}
}

// newServiceCmd is what the service manager starts; `wslmtu.exe service run`
// from a console runs the same loop in the foreground until Ctrl+C.
func newServiceCmd() *cobra.Command {
	svc := &cobra.Command{Use: "service", Short: "Windows service entry point", Hidden: true}
	var cfg windows.ServiceConfig
	run := &cobra.Command{
		Use:   "run",
		Short: "Run the service loop (started by the service manager)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := windows.RunService(cfg); err != nil {
				return failureErr(err)
			}
			return nil
		},
	}
	addServiceFlags(run, &cfg)
	svc.AddCommand(run)
	return svc
}
