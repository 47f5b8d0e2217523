package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/tunnel"
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

func TestParseTunnelTables(t *testing.T) {
	cfg, err := Parse("wslmtu.toml", []byte(`outer_scope = "all"
[[tunnel]]
name = "corp*"
kind = "other"
overhead = 100
fwmark = "0x1000/0xf000"

[[tunnel]]
name = "zt3jnkd6ic"
payload = 1400
kind = "zerotier"
port = 9993
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OuterScope != ScopeAll || len(cfg.TunnelSettings) != 2 {
		t.Fatalf("cfg = %+v", cfg)
	}
	if !cfg.IsTunnel("corp0") || cfg.IsTunnel("eth0") {
		t.Error("a [[tunnel]] name makes matching interfaces tunnels, and nothing else")
	}
	if s := cfg.Spec("corp0", "tun"); s.Kind != tunnel.Other || s.Need(1300) != 1400 {
		t.Errorf("corp0 spec = %+v", s)
	}
	if s := cfg.Spec("zt3jnkd6ic", "tun"); s.Need(2800) != 1448 {
		t.Errorf("zerotier with local.conf payload 1400 needs %d, want 1448", s.Need(2800))
	}
	if s := cfg.Spec("wg0", "tun"); s.Kind != tunnel.WireGuard {
		t.Errorf("wg0 spec = %+v", s)
	}
	m, _ := ParseMark(cfg.TunnelSettings[0].FwMark)
	if m != (Mark{Value: 0x1000, Mask: 0xf000}) || m.String() != "0x1000/0xf000" {
		t.Errorf("mark = %+v %s", m, m)
	}
}

func TestParseVerify(t *testing.T) {
	cfg, err := Parse("wslmtu.toml", []byte("verify = [\"100.64.0.2\", \"vpn.corp.example\", \"fd7a:115c:a1e0::2\"]\nverify_interval = \"0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Verify) != 3 || cfg.VerifyEvery() != 0 {
		t.Errorf("verify = %q, every %s", cfg.Verify, cfg.VerifyEvery())
	}
	if d := Default().VerifyEvery(); d != 15*time.Minute {
		t.Errorf("default interval %s, want 15m", d)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"unknown key", "mtu_strategy = \"off\"\nmtu_stratgy = \"off\"\n", `wslmtu.toml:2: unknown key "mtu_stratgy" (allowed: mtu_strategy,`},
		{"bad strategy", "\n\nmtu_strategy = \"bogus\"\n", `wslmtu.toml:3: mtu_strategy: unknown mtu strategy "bogus" (allowed: auto, raise-outer, lower-tunnel, off)`},
		{"bad scope", "outer_scope = \"some\"\n", `wslmtu.toml:1: outer_scope: unknown outer scope "some" (allowed: tunnel, all)`},
		{"mtu too low", "max_outer_mtu = 1000\n", "wslmtu.toml:1: max_outer_mtu: 1000 is out of range (allowed: 1280 to 9000)"},
		{"mss out of range", "# x\nmss = 100\n", "wslmtu.toml:2: mss: 100 is out of range (allowed: 0 for automatic, or 536 to 8960)"},
		{"wrong type", "mss_clamp = \"yes\"\n", "wslmtu.toml:1: "},
		{"syntax", "mtu_strategy = \n", "wslmtu.toml:1: "},
		{"bad tunnel", "tunnels = [\"a b\"]\n", `wslmtu.toml:1: tunnels: "a b" is not an interface name`},
		{"empty tunnels", "tunnels = []\n", "wslmtu.toml:1: tunnels: must name at least one"},
		{"log format", "log_format = \"xml\"\n", `wslmtu.toml:1: log_format: unknown log format "xml" (allowed: text, json)`},
		// Keys were matched case-insensitively, so a
		// later MSS_CLAMP = true won over mss_clamp = false.
		{"key case", "mss_clamp = false\nMSS_CLAMP = true\n", `wslmtu.toml:2: unknown key "MSS_CLAMP": keys are lowercase (mss_clamp)`},
		// Item 2: a pattern that selects lo would lower it and delete ::1.
		{"pattern selects lo", "tunnels = [\"tailscale0\", \"*\"]\n", `wslmtu.toml:1: tunnels: "*" selects lo, the loopback interface, which is never a tunnel`},
		{"pattern lo", "tunnels = [\"l?\"]\n", `wslmtu.toml:1: tunnels: "l?" selects lo`},
		{"outer is a tunnel", "\nouter_interface = \"tailscale0\"\n", `wslmtu.toml:2: outer_interface: "tailscale0" is a tunnel (it matches the tunnel pattern "tailscale0")`},
		{"outer is lo", "outer_interface = \"lo\"\n", `wslmtu.toml:1: outer_interface: "lo" is the loopback interface`},
		{"tunnel without name", "[[tunnel]]\nkind = \"other\"\n", `wslmtu.toml:1: tunnel.name: every [[tunnel]] needs a name`},
		{"tunnel bad kind", "[[tunnel]]\nname = \"x0\"\nkind = \"ipsec\"\n", `wslmtu.toml:3: tunnel.kind: unknown tunnel kind "ipsec"`},
		{"tunnel other needs overhead", "[[tunnel]]\nname = \"x0\"\nkind = \"other\"\n", `wslmtu.toml:3: tunnel.kind: kind = "other" needs overhead or outer_mtu (x0)`},
		{"tunnel bad mark", "[[tunnel]]\nname = \"x0\"\nfwmark = \"0x0\"\n", `wslmtu.toml:3: tunnel.fwmark: "0x0" is not a firewall mark`},
		{"tunnel bad port", "[[tunnel]]\nname = \"x0\"\nport = 70000\n", `wslmtu.toml:3: tunnel.port: 70000 is not a UDP port`},
		{"tunnel unknown key", "[[tunnel]]\nname = \"x0\"\nmtu = 1\n", `wslmtu.toml:3: unknown key "tunnel.mtu" (allowed: name, kind,`},
		{"tunnel key case", "[[tunnel]]\nName = \"x0\"\n", `wslmtu.toml:2: unknown key "tunnel.Name": keys are lowercase (tunnel.name)`},
		{"payload only for zerotier", "[[tunnel]]\nname = \"x0\"\npayload = 1400\n", `wslmtu.toml:3: tunnel.payload: payload goes with kind = "zerotier"`},
		{"second table", "[[tunnel]]\nname = \"a0\"\nport = 1\n\n[[tunnel]]\nname = \"b0\"\nport = -1\n", `wslmtu.toml:7: tunnel.port: -1 is not a UDP port`},
		{"second table without name", "[[tunnel]]\nname = \"a0\"\n[[tunnel]]\nport = 1\n", `wslmtu.toml:3: tunnel.name: every [[tunnel]] needs a name`},
		{"metrics path", "metrics_file = \"wslmtu.prom\"\n", `wslmtu.toml:1: metrics_file: "wslmtu.prom" must be an absolute file path`},
		{"verify host with port", "\nverify = [\"100.64.0.2\", \"10.0.0.1:80\"]\n", `wslmtu.toml:2: verify: "10.0.0.1:80" is neither an IP address nor a host name`},
		{"verify unspecified", "verify = [\"0.0.0.0\"]\n", `wslmtu.toml:1: verify: "0.0.0.0" names no single host`},
		{"verify twice", "verify = [\"peer\", \"peer\"]\n", `wslmtu.toml:1: verify: "peer" is listed twice`},
		{"verify link-local", "verify = [\"fe80::1\"]\n", `wslmtu.toml:1: verify: "fe80::1" is link-local without a zone`},
		{"verify interval", "\n\nverify_interval = \"often\"\n", `wslmtu.toml:3: verify_interval: "often" is not an interval`},
		{"verify interval too short", "verify_interval = \"1s\"\n", `wslmtu.toml:1: verify_interval: "1s" is not an interval (allowed: "0" for only after repairs, or a duration of at least 10s`},
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
	if err != nil || !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("cfg = %+v, err = %v", cfg, err)
	}
}

// A running agent must not fall back to the defaults while an editor
// replaces the file: Reload says the file is missing instead.
func TestReloadMissingFileIsAnError(t *testing.T) {
	_, err := Reload(filepath.Join(t.TempDir(), "none.toml"))
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("err = %v, want ErrMissing", err)
	}
}

// A FIFO hung, /dev/zero ran out of memory, and a
// dangling symlink was taken as the defaults.
func TestLoadRefusesWhatIsNotAConfigFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "wslmtu.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.toml")
	os.Symlink(filepath.Join(dir, "gone.toml"), dangling)
	zero := filepath.Join(dir, "zero.toml")
	os.Symlink("/dev/zero", zero)
	for path, want := range map[string]string{
		filepath.Join(dir, "wslmtu.toml"): "not a regular file (a directory)",
		dangling:                          "which does not exist",
		zero:                              "not a regular file (a character device)",
	} {
		_, err := Load(path)
		var cfgErr *Error
		if !errors.As(err, &cfgErr) || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s) = %v, want a config error saying %q", path, err, want)
		}
	}
}

// `wslmtu config --default` (install.sh's config file) must parse back to
// the defaults as it is and with every key line uncommented, and list every key.
func TestDefaultFileParsesBackToDefaults(t *testing.T) {
	text := DefaultFile(Default())
	cfg, err := Parse("default", []byte(text))
	if err != nil || !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("as written: %+v, %v", cfg, err)
	}
	var lines []string
	seen := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if k, _, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = "); ok && strings.HasPrefix(line, "# ") {
			if _, known := Lookup(k); known {
				line = strings.TrimPrefix(line, "# ")
				seen[k] = true
			}
		}
		lines = append(lines, line)
	}
	cfg, err = Parse("uncommented", []byte(strings.Join(lines, "\n")))
	if err != nil || !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("uncommented: %+v, %v", cfg, err)
	}
	for _, k := range Keys {
		if k.Type != TypeTables && !seen[k.Name] {
			t.Errorf("the default file does not list %s", k.Name)
		}
		if !strings.Contains(text, k.Name) {
			t.Errorf("the default file does not mention %s", k.Name)
		}
	}
	withWSL := Default()
	withWSL.AssumeWSL = true
	if cfg, err := Parse("set", []byte(DefaultFile(withWSL, "assume_wsl"))); err != nil || !cfg.AssumeWSL {
		t.Errorf("a key given as set is written uncommented: %+v, %v", cfg, err)
	}
}

// Every struct field has a key in the table, and Set reaches it.
func TestKeysCoverConfig(t *testing.T) {
	ty := reflect.TypeOf(Config{})
	for i := 0; i < ty.NumField(); i++ {
		if _, ok := Lookup(ty.Field(i).Tag.Get("toml")); !ok {
			t.Errorf("field %s has no entry in Keys", ty.Field(i).Name)
		}
	}
	c := Default()
	for key, value := range map[string]any{"mtu_strategy": "off", "max_outer_mtu": 1400, "mss_clamp": true, "tunnels": []string{"x0"}} {
		if err := c.Set(key, value); err != nil {
			t.Errorf("Set(%s): %v", key, err)
		}
	}
	if c.MTUStrategy != StrategyOff || c.MaxOuterMTU != 1400 || !c.MSSClamp || c.Tunnels[0] != "x0" {
		t.Errorf("after Set: %+v", c)
	}
	if err := c.Set("mss", "12"); err == nil {
		t.Error("a string for an int key was accepted")
	}
}
