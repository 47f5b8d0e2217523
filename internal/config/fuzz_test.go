package config

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse: the parser never panics, everything it accepts is valid (no
// tunnel pattern selects lo, the outer interface is never a tunnel, every
// value in range), an error always names the file, and an accepted config
// written back as TOML parses to the same config.
// Run: go test ./internal/config -run '^$' -fuzz FuzzParse -fuzztime 2m
func FuzzParse(f *testing.F) {
	f.Add([]byte(DefaultFile(Default())))
	f.Add([]byte("mtu_strategy = \"lower-tunnel\"\nmax_outer_mtu = 1400\ntunnels = [\"tailscale0\"]\nmss_clamp = true\n"))
	f.Add([]byte("mss_clamp = false\nMSS_CLAMP = true\n"))
	f.Add([]byte("tunnels = [\"*\"]\n"))
	f.Add([]byte("outer_interface = \"tailscale0\"\n"))
	f.Add([]byte("[[tunnel]]\nname = \"corp*\"\nkind = \"other\"\noverhead = 100\nfwmark = \"0x1000/0xf000\"\n[[tunnel]]\nname = \"zt*\"\nkind = \"zerotier\"\npayload = 1400\n"))
	f.Add([]byte("outer_scope = \"all\"\nmetrics_file = \"/var/lib/x.prom\"\nlog_format = \"json\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		if cfg.IsTunnel("lo") {
			t.Fatalf("lo is a tunnel under %+v", cfg)
		}
		if cfg.OuterInterface != "" && cfg.IsTunnel(cfg.OuterInterface) {
			t.Fatalf("the outer interface %q is a tunnel", cfg.OuterInterface)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
			t.Fatalf("encoding %+v: %v", cfg, err)
		}
		again, err := Parse("again.toml", buf.Bytes())
		if err != nil {
			t.Fatalf("written back, the config does not parse: %v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(normal(cfg), normal(again)) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v\n%s", cfg, again, buf.String())
		}
	})
}

// normal treats a nil and an empty list alike: TOML cannot tell them apart.
func normal(c Config) Config {
	if len(c.Tunnels) == 0 {
		c.Tunnels = nil
	}
	if len(c.TunnelSettings) == 0 {
		c.TunnelSettings = nil
	}
	return c
}
