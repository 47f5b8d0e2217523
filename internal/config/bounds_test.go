package config

import (
	"strings"
	"testing"
	"time"
)

// Every range check at both ends: the last accepted value and the first
// refused one, so an off-by-one in any limit fails here.
func TestValidateBounds(t *testing.T) {
	long := strings.Repeat("a.", 126) + "b" // 253 characters: the longest host name
	for _, tt := range []struct {
		toml string
		err  string // "" when accepted
	}{
		{"max_outer_mtu = 1280", ""},
		{"max_outer_mtu = 1279", "max_outer_mtu: 1279 is out of range (allowed: 1280 to 9000)"},
		{"max_outer_mtu = 9000", ""},
		{"max_outer_mtu = 9001", "max_outer_mtu: 9001 is out of range (allowed: 1280 to 9000)"},
		{"mss = 0", ""},
		{"mss = 536", ""},
		{"mss = 535", "mss: 535 is out of range (allowed: 0 for automatic, or 536 to 8960)"},
		{"mss = 8960", ""},
		{"mss = 8961", "mss: 8961 is out of range (allowed: 0 for automatic, or 536 to 8960)"},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"other\"\noverhead = 1000", ""},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"other\"\noverhead = 1001", "tunnel.overhead: 1001 is out of range (allowed: 1 to 1000)"},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"other\"\noverhead = -1", "tunnel.overhead: -1 is out of range (allowed: 1 to 1000)"},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"other\"\nouter_mtu = 68", ""},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"other\"\nouter_mtu = 67", "tunnel.outer_mtu: 67 is out of range (allowed: 68 to 9000)"},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"other\"\nouter_mtu = 9000", ""},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"other\"\nouter_mtu = 9001", "tunnel.outer_mtu: 9001 is out of range (allowed: 68 to 9000)"},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"zerotier\"\npayload = 1400", ""},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"zerotier\"\npayload = 1399", "tunnel.payload: 1399 is out of range (allowed: 1400 to 10100, as zerotier-one's local.conf)"},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"zerotier\"\npayload = 10100", ""},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"zerotier\"\npayload = 10101", "tunnel.payload: 10101 is out of range (allowed: 1400 to 10100, as zerotier-one's local.conf)"},
		{"[[tunnel]]\nname = \"x0\"\nport = 0", ""},
		{"[[tunnel]]\nname = \"x0\"\nport = 65535", ""},
		{"[[tunnel]]\nname = \"x0\"\nport = 65536", "tunnel.port: 65536 is not a UDP port (1 to 65535)"},
		{"[[tunnel]]\nname = \"x0\"\noverhead = 10", `tunnel.kind: overhead and outer_mtu go with kind = "other" (x0)`},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"wireguard\"\nouter_mtu = 1400", `tunnel.kind: overhead and outer_mtu go with kind = "other" (x0)`},
		{"[[tunnel]]\nname = \"x0\"\nkind = \"zerotier\"\nfwmark = \"0x10/0x10\"", ""},
		{"[[tunnel]]\nname = \"lo\"", `tunnel.name: "lo" selects lo, the loopback interface, which is never a tunnel`},
		{"[[tunnel]]\nname = \"a[\"", `tunnel.name: "a[" is not an interface name or glob pattern`},
		{"tunnels = [\"a234567890123456\"]", `tunnels: "a234567890123456" is not an interface name or glob pattern`},
		{"tunnels = [\"a23456789012345\"]", ""},
		{"outer_interface = \"eth/0\"", `outer_interface: "eth/0" is not an interface name`},
		{"outer_interface = \"eth0\"", ""},
		{"state_dir = \"var/lib\"", `state_dir: "var/lib" must be an absolute path`},
		{"state_dir = \"\"", `state_dir: "" must be an absolute path`},
		{"metrics_file = \"/var/lib/\"", `metrics_file: "/var/lib/" must be an absolute file path (or empty for none)`},
		{"metrics_file = \"/var/lib/x.prom\"", ""},
		{"verify_interval = \"10s\"", ""},
		{"verify_interval = \"9s\"", `verify_interval: "9s" is not an interval`},
		{"verify = [\"" + long + "\"]", ""},
		{"verify = [\"a" + long + "\"]", `verify: "a` + long + `" is neither an IP address nor a host name`},
		{"verify = [\"ff02::1\"]", `verify: "ff02::1" names no single host (unspecified, multicast or broadcast)`},
		{"verify = [\"255.255.255.255\"]", `verify: "255.255.255.255" names no single host`},
		{"verify = [\"::\"]", `verify: "::" names no single host`},
		{"verify = [\"fe80::1%eth0\", \"169.254.1.1\", \"peer.\"]", ""},
	} {
		_, err := Parse("f", []byte(tt.toml+"\n"))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v, want it accepted", tt.toml, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), ": "+tt.err)):
			t.Errorf("%q: %v\nwant %q", tt.toml, err, tt.err)
		}
	}
}

func TestVerifyEvery(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "10s": 10 * time.Second, "1h": time.Hour, "9s": 0, "bogus": 0} {
		if got := (Config{VerifyInterval: in}).VerifyEvery(); got != want {
			t.Errorf("VerifyEvery(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestMark(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Mark
		str  string
		err  string
	}{
		{in: "0x80000", want: Mark{0x80000, 0xffffffff}, str: "0x80000"},
		{in: " 524288 ", want: Mark{0x80000, 0xffffffff}, str: "0x80000"},
		{in: "0x80000/0xff0000", want: Mark{0x80000, 0xff0000}, str: "0x80000/0xff0000"},
		{in: "0x1/ 0xffffffff", want: Mark{1, 0xffffffff}, str: "0x1"},
		{in: "0xffffffff", want: Mark{0xffffffff, 0xffffffff}, str: "0xffffffff"},
		{in: "0x100000000", err: `"0x100000000" is not a firewall mark`},
		{in: "0", err: `"0" is not a firewall mark`},
		{in: "x", err: `"x" is not a firewall mark`},
		{in: "0x10/0", err: `"0x10/0": the mask must be non-zero and cover the mark`},
		{in: "0x10/0x0f", err: `"0x10/0x0f": the mask must be non-zero and cover the mark`},
		{in: "0x10/zz", err: `"0x10/zz": the mask must be non-zero and cover the mark`},
	} {
		got, err := ParseMark(tt.in)
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) || got != (Mark{}) {
				t.Errorf("ParseMark(%q) = %+v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseMark(%q) = %+v (%s), %v; want %+v (%s)", tt.in, got, got, err, tt.want, tt.str)
		}
	}
	if s := (Mark{Value: 7}).String(); s != "0x7" {
		t.Errorf("a mark without a mask reads %q, want 0x7", s)
	}
}

func TestErrorText(t *testing.T) {
	for _, tt := range []struct {
		err  Error
		want string
	}{
		{Error{File: "f.toml", Line: 3, Msg: "bad"}, "f.toml:3: bad"},
		{Error{File: "f.toml", Line: 1, Msg: "bad"}, "f.toml:1: bad"},
		{Error{File: "f.toml", Msg: "bad"}, "f.toml: bad"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}
