package detect

import (
	"errors"
	"net"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/wsldistro"
)

type fakeNetlink struct {
	links        []Link
	defaultIndex int
	rules        []Rule
}

func (f fakeNetlink) Links() ([]Link, error) { return f.links, nil }
func (f fakeNetlink) Routes() ([]Route, error) {
	if f.defaultIndex == 0 {
		return nil, nil
	}
	return []Route{{Family: 4, Table: MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: f.defaultIndex}}, nil
}
func (f fakeNetlink) Rules() ([]Rule, error) { return f.rules, nil }

func TestObserveFindsOuterAndTunnels(t *testing.T) {
	nl := fakeNetlink{links: []Link{
		{Name: "lo", Index: 1, MTU: 65536},
		{Name: "eth0", Index: 2, MTU: 1280},
		{Name: "tailscale0", Index: 5, MTU: 1280, Up: true},
		{Name: "wg-work", Index: 6, MTU: 1420, Up: true},
		{Name: "wg-new", Index: 7, MTU: 1500}, // just created, MTU not set yet
		{Name: "docker0", Index: 4, MTU: 1500},
	}, defaultIndex: 2}
	st, err := Observe(Sources{Root: wsldistro.Root()}, nl, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if st.Outer == nil || st.Outer.Name != "eth0" {
		t.Fatalf("outer = %+v, want eth0", st.Outer)
	}
	var names []string
	for _, l := range st.Tunnels {
		names = append(names, l.Name)
	}
	if got := strings.Join(names, ","); got != "tailscale0,wg-work" {
		t.Errorf("tunnels = %s", got)
	}
	if len(st.DownTunnels) != 1 || st.DownTunnels[0].Name != "wg-new" {
		t.Errorf("down tunnels = %+v, want wg-new", st.DownTunnels)
	}
}

func TestObserveIgnoresDefaultRouteThroughTunnel(t *testing.T) {
	nl := fakeNetlink{links: []Link{{Name: "eth0", Index: 2, MTU: 1280}, {Name: "tailscale0", Index: 3, MTU: 1280, Up: true}}, defaultIndex: 3}
	st, err := Observe(Sources{Root: wsldistro.Root()}, nl, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if st.Outer == nil || st.Outer.Name != "eth0" {
		t.Fatalf("outer = %+v, want eth0 (the tunnel holds the default route but is not the underlay)", st.Outer)
	}
}

func TestObserveUnknownOuterInterface(t *testing.T) {
	cfg := config.Default()
	cfg.OuterInterface = "eth9"
	_, err := Observe(Sources{Root: wsldistro.Root()}, fakeNetlink{links: []Link{{Name: "eth0", Index: 2}}}, cfg)
	if err == nil || !strings.Contains(err.Error(), `"eth9" not found`) {
		t.Fatalf("err = %v, want it to name eth9", err)
	}
}

func TestObserveAssumeWSL(t *testing.T) {
	cfg := config.Default()
	cfg.AssumeWSL = true
	src := Sources{Root: kernelFS(debianRelease, debianVersion), Getenv: envOf(nil)}
	st, err := Observe(src, fakeNetlink{links: natLinks, defaultIndex: 2}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Env.WSL || !st.Env.Assumed {
		t.Errorf("env = %+v, want assumed WSL", st.Env)
	}
}

func TestIsDefaultRoute(t *testing.T) {
	parse := func(s string) *net.IPNet { _, n, _ := net.ParseCIDR(s); return n }
	for dst, want := range map[string]bool{"0.0.0.0/0": true, "::/0": true, "10.0.0.0/8": false, "0.0.0.0/1": false, "fd7a::/48": false} {
		if got := IsDefaultRoute(parse(dst)); got != want {
			t.Errorf("IsDefaultRoute(%s) = %v", dst, got)
		}
	}
	if !IsDefaultRoute(nil) {
		t.Error("a nil destination is the default route")
	}
}

// Kernel WireGuard devices are tunnels whatever their name, and how their
// packets are recognised comes from wgctrl: the fwmark if set, else the
// listen port; tailscale0 by tailscaled's mark; a [[tunnel]] table wins.
func TestObserveTunnelKindsAndIdentification(t *testing.T) {
	nl := fakeNetlink{links: []Link{
		{Name: "lo", Index: 1, MTU: 65536},
		{Name: "eth0", Index: 2, MTU: 1280},
		{Name: "tailscale0", Index: 3, MTU: 1280, Kind: "tun", Up: true},
		{Name: "corp", Index: 4, MTU: 1420, Kind: "wireguard", Up: true},
		{Name: "wt0", Index: 5, MTU: 1280, Kind: "wireguard", Up: true},
		{Name: "zt3jnkd6ic", Index: 6, MTU: 2800, Kind: "tun", Up: true},
		{Name: "wg-port", Index: 7, MTU: 1420, Kind: "tun", Up: true},
		{Name: "vpn0", Index: 8, MTU: 1400, Kind: "tun", Up: true},
	}, defaultIndex: 2, rules: tailscaledRules(4)}
	src := Sources{Root: wsldistro.Root()}
	src.WireGuard = func(name string) (WireGuardDevice, bool) {
		switch name {
		case "corp":
			return WireGuardDevice{FwMark: 0xca6c, ListenPort: 51820}, true
		case "wt0":
			return WireGuardDevice{FwMark: 0x1bd00}, true
		case "wg-port":
			return WireGuardDevice{ListenPort: 41641}, true
		}
		return WireGuardDevice{}, false
	}
	src.Root.(fstest.MapFS)["var/lib/zerotier-one/local.conf"] = &fstest.MapFile{Data: []byte(`{"physical": {"10.0.0.0/8": {"mtu": 1400}}, "settings": {}}`)}
	cfg := config.Default()
	cfg.TunnelSettings = []config.TunnelSpec{{Name: "vpn0", Kind: "other", Overhead: 73, Port: 1194}}
	st, err := Observe(src, nl, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"tailscale0": "wireguard fwmark 0x80000/0xff0000",
		"corp":       "wireguard fwmark 0xca6c",
		"wt0":        "wireguard fwmark 0x1bd00",
		"wg-port":    "wireguard ipproto udp sport 41641",
		"zt3jnkd6ic": "zerotier ",
		"vpn0":       "other ipproto udp sport 1194",
	}
	got := map[string]string{}
	for _, l := range st.Tunnels {
		got[l.Name] = string(l.Tunnel.Spec.Kind) + " " + l.Tunnel.Selector()
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("tunnels %v", got)
	}
	for _, l := range st.Tunnels {
		switch l.Name {
		case "corp":
			if l.Tunnel.Pattern != "netlink kind wireguard" {
				t.Errorf("corp selected by %q", l.Tunnel.Pattern)
			}
		case "zt3jnkd6ic":
			if n := l.Tunnel.Spec.Need(l.MTU); n != 1448 {
				t.Errorf("zerotier with local.conf mtu 1400 needs %d, want 1448", n)
			}
			if !strings.Contains(l.Tunnel.Unidentified, "not a WireGuard device") {
				t.Errorf("zerotier identification: %q", l.Tunnel.Unidentified)
			}
		case "vpn0":
			if n := l.Tunnel.Spec.Need(l.MTU); n != 1473 {
				t.Errorf("vpn0 needs %d, want 1473", n)
			}
		}
	}
}

// tailscaledRules are the rules tailscaled v1.x installs (osrouter).
func tailscaledRules(family int) []Rule {
	m := TailscaleMark
	return []Rule{
		{Family: family, Priority: 5210, Mark: m.Value, Mask: m.Mask, Table: MainTable, SuppressPrefixlen: -1},
		{Family: family, Priority: 5230, Mark: m.Value, Mask: m.Mask, Table: 253, SuppressPrefixlen: -1},
		{Family: family, Priority: 5250, Mark: m.Value, Mask: m.Mask, SuppressPrefixlen: -1, Other: true},
		{Family: family, Priority: 5270, Table: 52, SuppressPrefixlen: -1},
	}
}

// How a tunnel's packets are recognised comes from evidence, never from
// its name: the device's own word (wgctrl) first, then tailscaled's own
// rules for its device, then a [[tunnel]] table; otherwise it is
// unidentified and says what is missing.
func TestTunnelIdentifiedByEvidence(t *testing.T) {
	ours := []Rule{ // wslmtu's own rules use tailscaled's mark below 5210
		{Family: 4, Priority: 5190, Mark: 0x80000, Mask: 0xff0000, Table: MainTable, SuppressPrefixlen: 0},
		{Family: 4, Priority: 5200, Mark: 0x80000, Mask: 0xff0000, Table: 5200, SuppressPrefixlen: -1},
	}
	for _, tc := range []struct {
		name     string
		rules    []Rule
		wg       *WireGuardDevice
		setting  *config.TunnelSpec
		selector string
		evidence string // in IdentifiedBy, or in Unidentified when selector is ""
	}{
		{name: "tailscale0 with no rules and no wgctrl", evidence: "tailscaled's rules (fwmark 0x80000/0xff0000, priority 5210–5270) are not in place"},
		{name: "only wslmtu's own rules are no evidence", rules: ours, evidence: "are not in place"},
		{name: "tailscaled's rules", rules: tailscaledRules(4), selector: "fwmark 0x80000/0xff0000", evidence: "tailscaled's rules at 5210–5250 use it"},
		{name: "tailscaled's IPv6 rules", rules: tailscaledRules(6), selector: "fwmark 0x80000/0xff0000", evidence: "tailscaled's rules at 5210–5250"},
		{name: "wireguard-go named tailscale0, no fwmark", rules: tailscaledRules(4), wg: &WireGuardDevice{ListenPort: 41641},
			selector: "ipproto udp sport 41641", evidence: "wgctrl: the device has no fwmark and listens on udp port 41641"},
		{name: "the device's fwmark wins", wg: &WireGuardDevice{FwMark: 0x1234, ListenPort: 41641},
			selector: "fwmark 0x1234", evidence: "wgctrl: the device's fwmark is 0x1234"},
		{name: "the device's port beats a [[tunnel]] mark", wg: &WireGuardDevice{ListenPort: 41641}, setting: &config.TunnelSpec{Name: "tailscale0", FwMark: "0x99"},
			selector: "ipproto udp sport 41641", evidence: "wgctrl"},
		{name: "a [[tunnel]] mark without other evidence", setting: &config.TunnelSpec{Name: "tailscale0", FwMark: "0x99"},
			selector: "fwmark 0x99", evidence: `[[tunnel]] name = "tailscale0" sets fwmark = "0x99"`},
		{name: "a readable device with neither", wg: &WireGuardDevice{}, evidence: "neither a fwmark nor a listen port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nl := fakeNetlink{links: []Link{{Name: "lo", Index: 1}, {Name: "eth0", Index: 2, MTU: 1280},
				{Name: "tailscale0", Index: 3, MTU: 1280, Kind: "tun", Up: true}}, defaultIndex: 2, rules: tc.rules}
			src := Sources{Root: wsldistro.Root()}
			src.WireGuard = func(string) (WireGuardDevice, bool) {
				if tc.wg == nil {
					return WireGuardDevice{}, false
				}
				return *tc.wg, true
			}
			cfg := config.Default()
			if tc.setting != nil {
				cfg.TunnelSettings = []config.TunnelSpec{*tc.setting}
			}
			st, err := Observe(src, nl, cfg)
			if err != nil || len(st.Tunnels) != 1 {
				t.Fatalf("%+v %v", st, err)
			}
			info := st.Tunnels[0].Tunnel
			if got := info.Selector(); got != tc.selector {
				t.Errorf("selector %q, want %q", got, tc.selector)
			}
			text := info.IdentifiedBy
			if tc.selector == "" {
				text = info.Unidentified
			}
			if !strings.Contains(text, tc.evidence) {
				t.Errorf("evidence %q (unidentified %q), want it to say %q", info.IdentifiedBy, info.Unidentified, tc.evidence)
			}
		})
	}
}

// A tunnel pattern that selects the outer interface is refused with the
// pattern and the interface named; lo never is a tunnel.
func TestObservePatternErrors(t *testing.T) {
	nl := fakeNetlink{links: []Link{{Name: "lo", Index: 1}, {Name: "eth0", Index: 2, MTU: 1280}, {Name: "tailscale0", Index: 3, Kind: "tun", Up: true}}, defaultIndex: 2}
	for _, tunnels := range [][]string{{"eth*"}, {"tailscale0", "eth0"}, {"e*"}} {
		cfg := config.Default()
		cfg.Tunnels = tunnels
		_, err := Observe(Sources{Root: wsldistro.Root()}, nl, cfg)
		var pe *PatternError
		if !errors.As(err, &pe) || pe.Interface != "eth0" || !strings.Contains(err.Error(), "the outer interface") {
			t.Errorf("tunnels %q: err = %v", tunnels, err)
		}
	}
	cfg := config.Default()
	cfg.Tunnels = []string{"tailscale0"}
	st, err := Observe(Sources{Root: wsldistro.Root()}, nl, cfg)
	if err != nil || len(st.Tunnels) != 1 || st.Outer.Name != "eth0" {
		t.Errorf("the default config: %+v %v", st, err)
	}
}

// Networking modes: from wslinfo when present (consomme and its alias
// virtioproxy included), else from the links, with the evidence shown.
func TestNetworkingModes(t *testing.T) {
	mirroredLinks := []Link{{Name: "lo"}, {Name: "loopback0"}, {Name: "eth0"}, {Name: "eth1"}}
	for _, tt := range []struct {
		wslinfo string
		links   []Link
		mode    string
		says    string
	}{
		{"nat", natLinks, "nat", "wslinfo --networking-mode says nat"},
		{"mirrored", natLinks, "mirrored", "says mirrored"},
		{"virtioproxy", natLinks, "consomme", "says virtioproxy (consomme"},
		{"consomme", natLinks, "consomme", "says consomme"},
		{"none", nil, "none", "says none"},
		{"bridged", natLinks, "bridged", "says bridged"},
		{"something-new", natLinks, "unknown", `"something-new", a mode wslmtu does not know`},
		{"", natLinks, "nat", "one eth0 and no loopback0: NAT mode's links (consomme looks the same"},
		{"", mirroredLinks, "mirrored", "loopback0 and 2 eth interface(s)"},
		{"", []Link{{Name: "lo"}, {Name: "ens3"}}, "unknown", "0 eth interface(s)"},
	} {
		src := Sources{Root: wsldistro.Root()}
		if tt.wslinfo != "" {
			out := tt.wslinfo
			src.Run = func(string, ...string) ([]byte, error) { return []byte(out + "\r\n"), nil }
		}
		env := DetectEnvironment(src, tt.links)
		if env.NetworkingMode != tt.mode || !strings.Contains(env.ModeEvidence, tt.says) {
			t.Errorf("wslinfo %q: mode %q (%s), want %q saying %q", tt.wslinfo, env.NetworkingMode, env.ModeEvidence, tt.mode, tt.says)
		}
	}
}

// The one rule for which links can change Derive's decision, which the
// agent follows: the outer interface by index (renamed away from eth*),
// the configured one, a tunnel by pattern or by kind, and WSL's adapters;
// never lo (not even a pattern selects it), a nameless link, or another
// link.
func TestRelevantLinks(t *testing.T) {
	cfg := config.Default()
	cfg.Tunnels = append(cfg.Tunnels, "corp*")
	cfg.OuterInterface = "wan1"
	for _, c := range []struct {
		l    Link
		want bool
	}{
		{Link{Name: "eth0", Index: 2}, true},
		{Link{Name: "eth3", Index: 9}, true},
		{Link{Name: "wan0", Index: 2}, true}, // the outer interface, renamed
		{Link{Name: "wan1", Index: 8}, true}, // outer_interface
		{Link{Name: "corp-vpn", Index: 10}, true},
		{Link{Name: "tailscale0", Index: 5}, true}, // the default patterns
		{Link{Name: "tunnel7", Index: 11, Kind: "wireguard"}, true},
		{Link{Name: "docker0", Index: 4}, false},
		{Link{Name: "veth1", Index: 12, Kind: "veth"}, false},
		{Link{Name: "lo", Index: 1, Kind: "wireguard"}, false},
		{Link{Name: "", Index: 2}, false},
		{Link{Name: "et", Index: 13}, false},
	} {
		if got := Relevant(c.l, 2, cfg); got != c.want {
			t.Errorf("Relevant(%s #%d, kind %q) = %v, want %v", c.l.Name, c.l.Index, c.l.Kind, got, c.want)
		}
	}
	if !IsTunnel(Link{Name: "corp1"}, cfg) || IsTunnel(Link{Name: "lo"}, cfg) || IsTunnel(Link{Name: "eth0", Kind: "veth"}, cfg) {
		t.Error("IsTunnel disagrees with the patterns and kinds")
	}
	if !IsWSLAdapter("eth0") || IsWSLAdapter("weth0") {
		t.Error("IsWSLAdapter disagrees with eth*")
	}
}
