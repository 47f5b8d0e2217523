package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	cfg, err := Parse("wslmtu.toml", []byte(`# comment
mtu_strategy = "lower-tunnel"
max_outer_mtu = 1400
tunnels = ["tailscale0"]
mss_clamp = true
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MTUStrategy != LowerTunnel || cfg.MaxOuterMTU != 1400 || !cfg.MSSClamp || len(cfg.Tunnels) != 1 || cfg.StateDir != DefaultStateDir {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"unknown key", "mtu_strategy = \"off\"\nmtu_stratgy = \"off\"\n", `wslmtu.toml:2: unknown key "mtu_stratgy" (allowed: mtu_strategy,`},
		{"bad strategy", "\n\nmtu_strategy = \"bogus\"\n", `wslmtu.toml:3: mtu_strategy: unknown mtu strategy "bogus" (allowed: raise-outer, lower-tunnel, off)`},
		{"mtu too low", "max_outer_mtu = 1000\n", "wslmtu.toml:1: max_outer_mtu: 1000 is out of range (allowed: 1280 to 9000)"},
		{"mss out of range", "# x\nmss = 100\n", "wslmtu.toml:2: mss: 100 is out of range (allowed: 0 for automatic, or 536 to 8960)"},
		{"wrong type", "mss_clamp = \"yes\"\n", "wslmtu.toml:1: "},
		{"syntax", "mtu_strategy = \n", "wslmtu.toml:1: "},
		{"bad tunnel", "tunnels = [\"a b\"]\n", `wslmtu.toml:1: tunnels: "a b" is not an interface name`},
		{"empty tunnels", "tunnels = []\n", "wslmtu.toml:1: tunnels: must name at least one"},
		{"log format", "log_format = \"xml\"\n", `wslmtu.toml:1: log_format: unknown log format "xml" (allowed: text, json)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("wslmtu.toml", []byte(tt.input))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant prefix %q", err, tt.want)
			}
		})
	}
}

func TestLoadMissingFileMeansDefaults(t *testing.T) {
	cfg, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if err != nil || cfg.MTUStrategy != RaiseOuter {
		t.Fatalf("cfg = %+v, err = %v", cfg, err)
	}
}

func TestLoadUnreadableFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "wslmtu.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "wslmtu.toml")); err == nil {
		t.Fatal("a directory in place of the config was accepted")
	}
}

// The commented default config that install.sh writes must stay valid when
// a user uncomments its lines, or the agent would refuse it after an edit.
func TestInstallShDefaultConfigParses(t *testing.T) {
	script, err := os.ReadFile("../../install.sh")
	if err != nil {
		t.Fatal(err)
	}
	text := string(script)
	start := strings.Index(text, "# wslmtu configuration.")
	end := strings.Index(text[start:], "\nEOF\n")
	if start < 0 || end < 0 {
		t.Fatal("install.sh no longer has the default config here-document")
	}
	body := strings.ReplaceAll(text[start:start+end], "$wsl_line", "assume_wsl = true")
	var uncommented []string
	keys := 0
	for _, line := range strings.Split(body, "\n") {
		if k, _, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = "); ok && strings.HasPrefix(line, "# ") && !strings.Contains(k, " ") {
			line = strings.TrimPrefix(line, "# ")
			keys++
		}
		uncommented = append(uncommented, line)
	}
	cfg, err := Parse("install.sh default", []byte(strings.Join(uncommented, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if keys < 7 || !reflect.DeepEqual(cfg, cfgWithAssume(true)) {
		t.Errorf("%d keys; uncommented defaults %+v differ from Default()", keys, cfg)
	}
}

func cfgWithAssume(v bool) Config {
	c := Default()
	c.AssumeWSL = v
	return c
}
