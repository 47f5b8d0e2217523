package detect

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/wsldistro"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// One host with a tunnel of every kind and every way of being recognised,
// derived into a whole State: links sorted by index, the outer interface,
// tunnels up and down with their specs and selectors, configured tunnels
// that are missing, route devices filled in from the links.
func TestDeriveWholeState(t *testing.T) {
	cfg := config.Default()
	cfg.Tunnels = []string{"tailscale0", "wg*", "wg-missing", "zt*"}
	cfg.TunnelSettings = []config.TunnelSpec{
		{Name: "corp0", Kind: tunnel.Other, Overhead: 73, FwMark: "0x1000/0xf000"},
		{Name: "vpn*", Port: 1194},
	}
	lo := Link{Name: "lo", Index: 1, MTU: 65536, Up: true}
	eth0 := Link{Name: "eth0", Index: 2, MTU: 1280, Kind: "veth", Up: true}
	ts := Link{Name: "tailscale0", Index: 3, MTU: 1280, Kind: "tun", Up: true, IPv6Addrs: 1}
	corp := Link{Name: "corp0", Index: 4, MTU: 1400, Kind: "tun", Up: true}
	zt := Link{Name: "zt0", Index: 5, MTU: 2800, Kind: "tun", Up: true}
	kwg := Link{Name: "kwg", Index: 6, MTU: 1420, Kind: "wireguard", Up: true}
	wg1 := Link{Name: "wg1", Index: 7, MTU: 1500, Kind: "wireguard"}
	vpn := Link{Name: "vpn1", Index: 8, MTU: 1400, Kind: "tun", Up: true}
	docker := Link{Name: "docker0", Index: 10, MTU: 1500, Kind: "bridge"}
	rules := tailscaledRules(4)
	in := Inputs{
		Env: Environment{WSL: true, Version: 2, NetworkingMode: ModeNAT},
		Snapshot: Snapshot{
			Links: []Link{wg1, lo, docker, eth0, ts, vpn, corp, zt, kwg},
			Routes: []Route{
				{Family: 4, Table: MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2},
				{Family: 4, Table: MainTable, Dst: "172.28.0.0/20", LinkIndex: 2, Dev: "as-read"},
				{Family: 6, Table: 52, Dst: "fd7a:115c:a1e0::/48", LinkIndex: 3},
				{Family: 4, Table: MainTable, Dst: "10.0.0.0/8", LinkIndex: 99},
			},
			Rules:       rules,
			OtherTables: []int{52, 100},
		},
		WireGuard: func(name string) (WireGuardDevice, bool) {
			return WireGuardDevice{}, name == "kwg"
		},
		ZeroTierPayload: 1400,
	}
	inputLinks := append([]Link(nil), in.Links...)
	inputRoutes := append([]Route(nil), in.Routes...)

	got, err := Derive(in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	with := func(l Link, info TunnelInfo) Link { l.Tunnel = &info; return l }
	notWG := "it is not a WireGuard device wslmtu can read (wgctrl)"
	want := State{
		Env:      in.Env,
		Links:    []Link{lo, eth0, ts, corp, zt, kwg, wg1, vpn, docker},
		Outer:    &eth0,
		OuterWhy: "holds the default route",
		Tunnels: []Link{
			with(ts, TunnelInfo{Spec: tunnel.Spec{Kind: tunnel.WireGuard, Source: "a WireGuard-family name"}, Pattern: "tailscale0",
				Mark: 0x80000, Mask: 0xff0000, IdentifiedBy: "tailscaled's rules at 5210–5250 use it"}),
			with(corp, TunnelInfo{Spec: tunnel.Spec{Kind: tunnel.Other, Overhead: 73, Source: `[[tunnel]] name = "corp0"`}, Pattern: "corp0",
				Mark: 0x1000, Mask: 0xf000, IdentifiedBy: `[[tunnel]] name = "corp0" sets fwmark = "0x1000/0xf000"`}),
			with(zt, TunnelInfo{Spec: tunnel.Spec{Kind: tunnel.ZeroTier, Payload: 1400, Source: "zerotier-one's local.conf"}, Pattern: "zt*",
				Unidentified: notWG}),
			with(kwg, TunnelInfo{Spec: tunnel.Spec{Kind: tunnel.WireGuard, Source: "netlink kind wireguard"}, Pattern: "netlink kind wireguard",
				Unidentified: "its WireGuard device has neither a fwmark nor a listen port"}),
			with(vpn, TunnelInfo{Spec: tunnel.Spec{Kind: tunnel.WireGuard, Source: `[[tunnel]] name = "vpn*"`}, Pattern: "vpn*",
				Port: 1194, IdentifiedBy: `[[tunnel]] name = "vpn*" sets port = 1194`}),
		},
		DownTunnels: []Link{
			with(wg1, TunnelInfo{Spec: tunnel.Spec{Kind: tunnel.WireGuard, Source: "netlink kind wireguard"}, Pattern: "wg*", Unidentified: notWG}),
		},
		MissingTunnels: []string{"wg-missing"},
		Routes: []Route{
			{Family: 4, Table: MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2, Dev: "eth0"},
			{Family: 4, Table: MainTable, Dst: "172.28.0.0/20", LinkIndex: 2, Dev: "as-read"},
			{Family: 6, Table: 52, Dst: "fd7a:115c:a1e0::/48", LinkIndex: 3, Dev: "tailscale0"},
			{Family: 4, Table: MainTable, Dst: "10.0.0.0/8", LinkIndex: 99},
		},
		Rules:       rules,
		OtherTables: []int{52, 100},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("state:\n got %s\nwant %s", dump(got), dump(want))
	}
	if !reflect.DeepEqual(in.Links, inputLinks) || !reflect.DeepEqual(in.Routes, inputRoutes) {
		t.Error("Derive changed its inputs")
	}

	// A configured outer interface of kind wireguard is the outer one, never
	// also a tunnel; without a local.conf payload, ZeroTier's spec is the
	// one its name implies.
	cfg.OuterInterface = "kwg"
	in.ZeroTierPayload = 0
	got, err = Derive(in, cfg)
	if err != nil || got.Outer == nil || got.Outer.Name != "kwg" || got.OuterWhy != "outer_interface in the config" {
		t.Fatalf("outer %+v (%s), %v", got.Outer, got.OuterWhy, err)
	}
	for _, l := range append(got.Tunnels, got.DownTunnels...) {
		if l.Name == "kwg" {
			t.Error("the outer interface is also a tunnel")
		}
		if want := (tunnel.Spec{Kind: tunnel.ZeroTier, Source: "a ZeroTier name"}); l.Name == "zt0" && l.Tunnel.Spec != want {
			t.Errorf("zt0 without local.conf: %+v, want %+v", l.Tunnel.Spec, want)
		}
	}
}

// dump shows a state with its tunnels' info, which %+v prints as pointers.
func dump(st State) string {
	var b strings.Builder
	for _, l := range append(append([]Link(nil), st.Tunnels...), st.DownTunnels...) {
		fmt.Fprintf(&b, "\n  %+v %+v", l, *l.Tunnel)
	}
	st.Tunnels, st.DownTunnels = nil, nil
	fmt.Fprintf(&b, "\n  %+v", st)
	if st.Outer != nil {
		fmt.Fprintf(&b, "\n  outer %+v", *st.Outer)
	}
	return b.String()
}

// chooseOuter, case by case: the configured interface, else the main
// table's default route with the lowest metric (IPv4 first, the first of
// equal metrics), skipping lo, tun and wireguard links and links a tunnel
// pattern selects, else eth0; a pattern that selects the only candidate is
// an error naming it.
func TestChooseOuter(t *testing.T) {
	eth0 := Link{Name: "eth0", Index: 2, Kind: "veth"}
	eth1 := Link{Name: "eth1", Index: 3, Kind: "veth"}
	ens3 := Link{Name: "ens3", Index: 4, Kind: "device"}
	vpn := Link{Name: "vpn0", Index: 5, Kind: "tun"}
	kwg := Link{Name: "corp", Index: 6, Kind: "wireguard"}
	lo := Link{Name: "lo", Index: 1}
	def := func(family, index, metric int) Route {
		return Route{Family: family, Table: MainTable, Dst: "default", LinkIndex: index, Metric: metric}
	}
	byRoute := "holds the default route"
	for _, tt := range []struct {
		name     string
		links    []Link
		routes   []Route
		tunnels  []string
		outerCfg string
		want     string // "name: why" or the error
	}{
		{"configured", []Link{eth0, eth1}, []Route{def(4, 2, 0)}, nil, "eth1", "eth1: outer_interface in the config"},
		{"configured missing", []Link{lo, eth0}, nil, nil, "eth9", `error: outer interface "eth9" not found (interfaces: lo, eth0)`},
		{"lowest metric", []Link{eth0, eth1}, []Route{def(4, 2, 100), def(4, 3, 50)}, nil, "", "eth1: " + byRoute},
		{"lowest metric first", []Link{eth0, eth1}, []Route{def(4, 3, 50), def(4, 2, 100)}, nil, "", "eth1: " + byRoute},
		{"equal metrics: the first", []Link{eth0, eth1}, []Route{def(4, 3, 0), def(4, 2, 0)}, nil, "", "eth1: " + byRoute},
		{"equal metrics: the first again", []Link{eth0, eth1}, []Route{def(4, 2, 7), def(4, 3, 7)}, nil, "", "eth0: " + byRoute},
		{"IPv4 before IPv6", []Link{eth0, eth1}, []Route{def(6, 3, 1), def(4, 2, 100)}, nil, "", "eth0: " + byRoute},
		{"IPv6 when no IPv4", []Link{eth0, eth1}, []Route{def(6, 3, 1)}, nil, "", "eth1: " + byRoute},
		{"main table only", []Link{eth0, ens3}, []Route{{Family: 4, Table: 5200, Dst: "default", LinkIndex: 4}}, nil, "", "eth0: no default route; eth0 is WSL's NAT interface"},
		{"not a default", []Link{eth0, ens3}, []Route{{Family: 4, Table: MainTable, Dst: "10.0.0.0/8", LinkIndex: 4}}, nil, "", "eth0: no default route; eth0 is WSL's NAT interface"},
		{"not a link", []Link{eth0}, []Route{def(4, 42, 0)}, nil, "", "eth0: no default route; eth0 is WSL's NAT interface"},
		{"skip lo, tun, wireguard", []Link{lo, ens3, vpn, kwg}, []Route{def(4, 1, 0), def(4, 5, 0), def(4, 6, 0), def(4, 4, 900)}, nil, "", "ens3: " + byRoute},
		{"a tun is never the underlay", []Link{vpn}, []Route{def(4, 5, 0)}, nil, "", ": "},
		{"nothing at all", []Link{lo, ens3}, nil, nil, "", ": "},
		{"a pattern selects the holder", []Link{lo, ens3}, []Route{def(4, 4, 0)}, []string{"en*"}, "",
			`error: tunnels: "en*" selects ens3, the outer interface (it holds the default route)`},
		{"the first holder a pattern selects is named", []Link{lo, ens3, Link{Name: "enp1", Index: 7}}, []Route{def(6, 7, 0), def(4, 4, 0)}, []string{"enp*", "ens*"}, "",
			`error: tunnels: "ens*" selects ens3, the outer interface (it holds the default route)`},
		{"a pattern holder does not hide another", []Link{ens3, eth1}, []Route{def(4, 4, 0), def(4, 3, 9)}, []string{"ens*"}, "", "eth1: " + byRoute},
		{"a pattern selects eth0", []Link{eth0}, nil, []string{"e*"}, "",
			`error: tunnels: "e*" selects eth0, the outer interface (WSL's NAT interface)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			if tt.tunnels != nil {
				cfg.Tunnels = tt.tunnels
			}
			cfg.OuterInterface = tt.outerCfg
			isTunnel := func(l Link) bool { return l.Name != "lo" && (cfg.IsTunnel(l.Name) || l.Kind == "wireguard") }
			l, why, err := chooseOuter(tt.links, tt.routes, cfg, isTunnel)
			got := why
			if l != nil {
				got = l.Name + ": " + why
			} else {
				got = ": " + why
			}
			if err != nil {
				got = "error: " + err.Error()
			}
			if !strings.HasPrefix(got, tt.want) || (err == nil && got != tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestTailscaledRulesAndPriorities(t *testing.T) {
	m := TailscaleMark
	rule := func(pref int, mark, mask uint32) Rule {
		return Rule{Family: 4, Priority: pref, Mark: mark, Mask: mask, SuppressPrefixlen: -1}
	}
	all := []Rule{
		rule(5209, m.Value, m.Mask), rule(5210, m.Value, m.Mask), rule(5230, m.Value, 0xffffffff),
		rule(5250, 0x40000, m.Mask), rule(5270, m.Value, m.Mask), rule(5271, m.Value, m.Mask),
	}
	got := TailscaledRules(all)
	if want := []Rule{all[1], all[4]}; !reflect.DeepEqual(got, want) {
		t.Errorf("TailscaledRules = %+v, want 5210 and 5270", got)
	}
	for _, tt := range []struct {
		rules []Rule
		want  string
	}{
		{got, "5210–5270"},
		{[]Rule{all[4], all[1]}, "5210–5270"},
		{[]Rule{all[4], rule(5230, 0, 0), all[1]}, "5210–5270"},
		{[]Rule{all[1]}, "5210"},
		{[]Rule{all[1], all[1]}, "5210"},
	} {
		if s := prefList(tt.rules); s != tt.want {
			t.Errorf("prefList = %q, want %q", s, tt.want)
		}
	}
}

func TestZeroTierPayloadFromLocalConf(t *testing.T) {
	padded := func(json string, size int) string { return json + strings.Repeat(" ", size-len(json)) }
	for _, tt := range []struct {
		conf string // "" for no file
		want int
	}{
		{"", 0},
		{"not json", 0},
		{`{"physical": {"10.0.0.0/8": {"mtu": 1399}}}`, 0},
		{`{"physical": {"10.0.0.0/8": {"mtu": 1400}}}`, 1400},
		{`{"physical": {"10.0.0.0/8": {"mtu": 10100}}}`, 10100},
		{`{"physical": {"10.0.0.0/8": {"mtu": 10101}}}`, 0},
		{`{"physical": {"a": {"mtu": 1500}, "b": {"mtu": 1400}, "c": {"mtu": 1450}, "d": {"mtu": 20000}}}`, 1500},
		{padded(`{"physical": {"a": {"mtu": 1400}}}`, 1<<20), 1400},
		{padded(`{"physical": {"a": {"mtu": 1400}}}`, 1<<20+1), 0},
	} {
		root := fstest.MapFS{}
		if tt.conf != "" {
			root["var/lib/zerotier-one/local.conf"] = &fstest.MapFile{Data: []byte(tt.conf)}
		}
		if got := ZeroTierPayload(root); got != tt.want {
			t.Errorf("ZeroTierPayload(%.60q) = %d, want %d", tt.conf, got, tt.want)
		}
	}
	if got := ZeroTierPayload(nil); got != 0 {
		t.Errorf("ZeroTierPayload(nil) = %d", got)
	}
}

func TestRouteAndRuleText(t *testing.T) {
	for _, tt := range []struct {
		r    Route
		want string
	}{
		{Route{Dst: "default", Gw: "172.28.0.1", Dev: "eth0", Table: MainTable}, "default via 172.28.0.1 dev eth0"},
		{Route{Dst: "default", LinkIndex: 7, Table: 5200, Metric: 100}, "default dev #7 table 5200 metric 100"},
		{Route{Dst: "10.0.0.0/8", Dev: "eth0", LinkIndex: 7}, "10.0.0.0/8 dev eth0"},
		{Route{Dst: "10.0.0.0/8", Table: 1, Metric: 1}, "10.0.0.0/8 table 1 metric 1"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
	}
	for _, tt := range []struct {
		r    Rule
		want string
	}{
		{Rule{Priority: 5210, Mark: 0x80000, Mask: 0xff0000, Table: MainTable, SuppressPrefixlen: -1}, "5210: from all fwmark 0x80000/0xff0000 lookup main"},
		{Rule{Priority: 5200, Mark: 0x80000, Mask: 0xffffffff, Table: 5200, SuppressPrefixlen: 0}, "5200: from all fwmark 0x80000 lookup 5200 suppress_prefixlength 0"},
		{Rule{Priority: 5201, IPProto: 17, Sport: 41641, Table: 5200, SuppressPrefixlen: -1}, "5201: from all ipproto udp sport 41641 lookup 5200"},
		{Rule{Priority: 1, Mark: 5, IPProto: 6, SuppressPrefixlen: 1}, "1: from all ipproto 6 suppress_prefixlength 1"},
		{Rule{Priority: 0, Sport: 1, SuppressPrefixlen: -2}, "0: from all sport 1"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
	}
	if Tool(4) != "ip" || Tool(6) != "ip -6" {
		t.Errorf("Tool: %q, %q", Tool(4), Tool(6))
	}
}

// Same compares what names a kernel route, not its MTU or device name; each
// identifying field on its own makes another route.
func TestRouteSame(t *testing.T) {
	r := Route{Family: 4, Table: MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2, Dev: "eth0", Metric: 5, MTU: 1280}
	same := r
	same.MTU, same.Dev = 1360, ""
	if !r.Same(same) {
		t.Error("an MTU or a device name makes another route")
	}
	for _, change := range []func(*Route){
		func(o *Route) { o.Family = 6 }, func(o *Route) { o.Table = 5200 }, func(o *Route) { o.Dst = "10.0.0.0/8" },
		func(o *Route) { o.Gw = "" }, func(o *Route) { o.LinkIndex = 3 }, func(o *Route) { o.Metric = 0 },
	} {
		o := r
		change(&o)
		if r.Same(o) {
			t.Errorf("%+v is the same route as %+v", o, r)
		}
	}
}

func TestSelectorAndIdentified(t *testing.T) {
	for _, tt := range []struct {
		t          *TunnelInfo
		selector   string
		identified bool
	}{
		{nil, "", false},
		{&TunnelInfo{}, "", false},
		{&TunnelInfo{Mark: 0x80000, Mask: 0xff0000, Port: 1}, "fwmark 0x80000/0xff0000", true},
		{&TunnelInfo{Mark: 0x1, Mask: 0xffffffff}, "fwmark 0x1", true},
		{&TunnelInfo{Port: 51820}, "ipproto udp sport 51820", true},
	} {
		if s, id := tt.t.Selector(), tt.t.Identified(); s != tt.selector || id != tt.identified {
			t.Errorf("%+v: %q %v, want %q %v", tt.t, s, id, tt.selector, tt.identified)
		}
	}
	if s := SpecOf(Link{Name: "zt0"}); s.Kind != tunnel.ZeroTier {
		t.Errorf("SpecOf without tunnel info infers from the name: %+v", s)
	}
	if s := SpecOf(Link{Name: "zt0", Tunnel: &TunnelInfo{Spec: tunnel.Spec{Kind: tunnel.Other, Overhead: 1}}}); s.Kind != tunnel.Other {
		t.Errorf("SpecOf with tunnel info: %+v", s)
	}
}

// The snapshot as revert sees it: route devices filled from the links, the
// snapshot's own routes untouched.
func TestSnapshotStateAndDefaultRoutes(t *testing.T) {
	snap := Snapshot{
		Links: []Link{{Name: "eth0", Index: 2}, {Name: "tailscale0", Index: 3}},
		Routes: []Route{
			{Family: 4, Table: MainTable, Dst: "default", LinkIndex: 2},
			{Family: 6, Table: MainTable, Dst: "default", LinkIndex: 2, Dev: "kept"},
			{Family: 4, Table: 5200, Dst: "default", LinkIndex: 2},
			{Family: 4, Table: MainTable, Dst: "100.64.0.0/10", LinkIndex: 3},
			{Family: 4, Table: MainTable, Dst: "default", LinkIndex: 3},
		},
		Rules:       []Rule{{Priority: 5}},
		OtherTables: []int{7},
	}
	st := snap.State()
	want := State{Links: snap.Links, Rules: snap.Rules, OtherTables: snap.OtherTables, Routes: []Route{
		{Family: 4, Table: MainTable, Dst: "default", LinkIndex: 2, Dev: "eth0"},
		{Family: 6, Table: MainTable, Dst: "default", LinkIndex: 2, Dev: "kept"},
		{Family: 4, Table: 5200, Dst: "default", LinkIndex: 2, Dev: "eth0"},
		{Family: 4, Table: MainTable, Dst: "100.64.0.0/10", LinkIndex: 3, Dev: "tailscale0"},
		{Family: 4, Table: MainTable, Dst: "default", LinkIndex: 3, Dev: "tailscale0"},
	}}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("State() = %+v\nwant %+v", st, want)
	}
	if snap.Routes[0].Dev != "" {
		t.Error("State() wrote into the snapshot's routes")
	}
	if got := st.DefaultRoutes(2); !reflect.DeepEqual(got, []Route{want.Routes[0], want.Routes[1]}) {
		t.Errorf("DefaultRoutes(2) = %+v", got)
	}
	if l := st.Link("tailscale0"); l == nil || l.Index != 3 {
		t.Errorf("Link(tailscale0) = %+v", l)
	}
	if l := st.Link("wg0"); l != nil {
		t.Errorf("Link(wg0) = %+v", l)
	}
}

type failingNetlink struct {
	fakeNetlink
	fail  string
	other []int
}

var errBroken = errors.New("broken")

func (f failingNetlink) Links() ([]Link, error) {
	if f.fail == "links" {
		return nil, errBroken
	}
	return f.fakeNetlink.Links()
}
func (f failingNetlink) Routes() ([]Route, error) {
	if f.fail == "routes" {
		return nil, errBroken
	}
	return f.fakeNetlink.Routes()
}
func (f failingNetlink) Rules() ([]Rule, error) {
	if f.fail == "rules" {
		return nil, errBroken
	}
	return f.fakeNetlink.Rules()
}
func (f failingNetlink) OtherTables() []int { return f.other }

// A failed kernel read is an error naming what was being read, and nothing
// is derived from half a snapshot.
func TestReadErrors(t *testing.T) {
	base := fakeNetlink{links: natLinks, defaultIndex: 2, rules: tailscaledRules(4)}
	for fail, want := range map[string]string{
		"links":  "listing interfaces: broken",
		"routes": "listing routes: broken",
		"rules":  "listing policy rules: broken",
	} {
		nl := failingNetlink{fakeNetlink: base, fail: fail}
		snap, err := Read(nl)
		if err == nil || err.Error() != want || !errors.Is(err, errBroken) || !reflect.DeepEqual(snap, Snapshot{}) {
			t.Errorf("%s: %+v, %v; want %q", fail, snap, err, want)
		}
		if _, err := Observe(Sources{Root: wsldistro.Root()}, nl, config.Default()); err == nil || err.Error() != want {
			t.Errorf("Observe with failing %s: %v", fail, err)
		}
	}
	snap, err := Read(failingNetlink{fakeNetlink: base, other: []int{52}})
	want := Snapshot{Links: natLinks, Routes: []Route{{Family: 4, Table: MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}},
		Rules: tailscaledRules(4), OtherTables: []int{52}}
	if err != nil || !reflect.DeepEqual(snap, want) {
		t.Errorf("Read = %+v, %v\nwant %+v", snap, err, want)
	}
}

// Sources without a root read as a host without files, not a panic.
func TestDetectEnvironmentWithoutRoot(t *testing.T) {
	env := DetectEnvironment(Sources{}, nil)
	if env.WSL || env.Kernel != "" || len(env.Evidence) != 0 {
		t.Errorf("no root: %+v, want an empty environment", env)
	}
}
