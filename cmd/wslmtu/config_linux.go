package main

import (
	"fmt"
	"io"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/internal/config"
)

func (c *cli) configCmd() *cobra.Command {
	var def bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the configuration in effect (--default: the commented default file)",
		Long: `Print the configuration in effect: the config file with the flags given laid
over it, one key per line. An invalid file is reported with its line (exit 2).

With --default it prints the commented default config file instead, the one
the packages and install.sh install; keys given as flags are written in it
uncommented with their value:
  wslmtu config --default --assume-wsl >/etc/wslmtu/wslmtu.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if def {
				cfg, err := overlayFlags(cmd, config.Default())
				if err != nil {
					return err
				}
				fmt.Fprint(out, config.DefaultFile(cfg, changedKeys(cmd)...))
				return nil
			}
			cfg, err := c.loadConfig(cmd)
			if err != nil {
				return err
			}
			return printConfig(out, c.configPath, cfg)
		},
	}
	cmd.Flags().BoolVar(&def, "default", false, "print the commented default config file")
	return cmd
}

// printConfig writes cfg as the TOML file it is equivalent to.
func printConfig(out io.Writer, path string, cfg config.Config) error {
	fmt.Fprintf(out, "# in effect: %s and the flags given\n", path)
	for _, k := range config.Keys {
		if k.Type != config.TypeTables {
			fmt.Fprintf(out, "%s = %s\n", k.Name, cfg.Value(k.Name))
		}
	}
	if len(cfg.TunnelSettings) == 0 {
		return nil
	}
	fmt.Fprintln(out)
	tables := struct {
		Tunnel []config.TunnelSpec `toml:"tunnel"`
	}{cfg.TunnelSettings}
	if err := toml.NewEncoder(out).Encode(tables); err != nil {
		return failureErr(err)
	}
	return nil
}
