package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wslmtu/wslmtu/internal/config"
)

// Flags carry the same names as the config keys (with '-' for '_'); a flag
// given on the command line wins over the file.
var flags struct {
	configPath     string
	stateDir       string
	assumeWSL      bool
	mtuStrategy    string
	maxOuterMTU    int
	tunnels        []string
	outerInterface string
	mssClamp       bool
	mss            int
	logFormat      string
}

func init() {
	pf := rootCmd.PersistentFlags()
	def := config.Default()
	pf.StringVar(&flags.configPath, "config", config.DefaultPath, "config file (TOML); a missing file means defaults")
	pf.StringVar(&flags.stateDir, "state-dir", def.StateDir, "where the revert record, agent counters and lock live")
	pf.BoolVar(&flags.assumeWSL, "assume-wsl", false, "treat this host as WSL2 even if it is not detected as one")
	pf.StringVar(&flags.mtuStrategy, "mtu-strategy", string(def.MTUStrategy), "raise-outer, lower-tunnel or off")
	pf.IntVar(&flags.maxOuterMTU, "max-outer-mtu", def.MaxOuterMTU, "never raise the outer interface above this")
	pf.StringSliceVar(&flags.tunnels, "tunnels", def.Tunnels, "tunnel interface names or glob patterns")
	pf.StringVar(&flags.outerInterface, "outer-interface", "", "outer interface (default: the one holding the default route)")
	pf.BoolVar(&flags.mssClamp, "mss-clamp", false, "clamp TCP MSS on the tunnels (TCP only)")
	pf.IntVar(&flags.mss, "mss", 0, "MSS to clamp to (0: computed from the outer MTU)")
	pf.StringVar(&flags.logFormat, "log-format", string(def.LogFormat), "agent log format: text or json")
}

// loadConfig reads the config file and lays the flags given on top.
func loadConfig(cmd *cobra.Command) (config.Config, error) {
	cfg, err := config.Load(flags.configPath)
	if err != nil {
		return cfg, usageErr(err)
	}
	return overlayFlags(cmd, cfg)
}

// overlayFlags lays the flags given on the command line over cfg and
// validates the result; the agent calls it again after each config reload.
func overlayFlags(cmd *cobra.Command, cfg config.Config) (config.Config, error) {
	changed := cmd.Flags().Changed
	if changed("state-dir") {
		cfg.StateDir = flags.stateDir
	}
	if changed("assume-wsl") {
		cfg.AssumeWSL = flags.assumeWSL
	}
	if changed("mtu-strategy") {
		cfg.MTUStrategy = config.Strategy(flags.mtuStrategy)
	}
	if changed("max-outer-mtu") {
		cfg.MaxOuterMTU = flags.maxOuterMTU
	}
	if changed("tunnels") {
		cfg.Tunnels = flags.tunnels
	}
	if changed("outer-interface") {
		cfg.OuterInterface = flags.outerInterface
	}
	if changed("mss-clamp") {
		cfg.MSSClamp = flags.mssClamp
	}
	if changed("mss") {
		cfg.MSS = flags.mss
	}
	if changed("log-format") {
		cfg.LogFormat = config.LogFormat(flags.logFormat)
	}
	if err := cfg.Validate(); err != nil {
		if fe, ok := err.(*config.FieldError); ok {
			return cfg, usageErr(fmt.Errorf("--%s: %s", flagName(fe.Key), fe.Msg))
		}
		return cfg, usageErr(err)
	}
	return cfg, nil
}

func flagName(key string) string {
	b := []byte(key)
	for i := range b {
		if b[i] == '_' {
			b[i] = '-'
		}
	}
	return string(b)
}
