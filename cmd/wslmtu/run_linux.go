package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/fix"

	"github.com/wslmtu/wslmtu/agent"
	"github.com/wslmtu/wslmtu/internal/config"
)

func (c *cli) runCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the agent: apply the plan, then re-apply it after every change, until stopped",
		Long: `Run the agent: apply the plan as fix does, then follow the kernel's link and
route changes and re-apply it within a millisecond whenever something undoes it.
The config file is reloaded when it changes; SIGHUP (systemctl reload wslmtu)
reads it again and checks the MSS rules at once. SIGTERM or SIGINT stop the
agent; the fixes stay in place unless revert_on_stop = true.`,
		Args: cobra.NoArgs,
		RunE: c.withHost(func(cmd *cobra.Command, cfg config.Config, host fix.Host) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			hangups := make(chan os.Signal, 1)
			signal.Notify(hangups, syscall.SIGHUP)
			defer signal.Stop(hangups)
			resync := make(chan struct{}, 1)
			go func() {
				for range hangups {
					select {
					case resync <- struct{}{}:
					default: // one pending resync covers many signals
					}
				}
			}()
			// The health check reads the host on a netlink socket of its
			// own, so that its dumps never hold up a repair.
			healthHost, closeHealth, err := openHost(cfg)
			if err != nil {
				return err
			}
			defer closeHealth()
			err = agent.Run(ctx, agent.Options{
				Config:     cfg,
				ConfigPath: c.configPath,
				Overlay:    func(c config.Config) (config.Config, error) { return overlayFlags(cmd, c) },
				Host:       host,
				Logger:     newLogger(cfg.LogFormat),
				Resync:     resync,
				Version:    c.version(),
				HealthHost: &healthHost,
			})
			if err != nil {
				return classify(err)
			}
			return nil
		}),
	}
}

// newLogger writes to stderr; under journald (JOURNAL_STREAM is set) the
// journal stamps each line itself, so the time is left out.
func newLogger(format config.LogFormat) *slog.Logger {
	opts := &slog.HandlerOptions{}
	if os.Getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	if format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
