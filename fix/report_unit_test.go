package fix

import (
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// Each thing not in force is one problem, in its own words.
func TestHealthProblemsTable(t *testing.T) {
	act := Action{Link: "eth0", From: 1280, To: 1360, Reason: "r"}
	for _, tt := range []struct {
		name string
		r    Report
		want string
	}{
		{"in force", Report{}, "healthy"},
		{"refused", Report{Plan: Plan{Refused: "not WSL", Actions: []Action{act}}}, "not managed: wslmtu changes nothing on this host"},
		{"a damaged record", Report{RecordErr: "damaged"}, "unhealthy: damaged"},
		{"one change", Report{Plan: Plan{Actions: []Action{act}}}, "unhealthy: 1 change pending"},
		{"two changes", Report{Plan: Plan{Actions: []Action{act, act}}}, "unhealthy: 2 changes pending"},
		{"our chains left with clamping off", Report{Plan: Plan{MSS: &MSSPlan{State: MSSPresent}}},
			"unhealthy: mss_clamp is off but our MSS chains are still there"},
		{"rules not in place", Report{Plan: Plan{MSS: &MSSPlan{Clamp: true, State: MSSAbsent}}}, "unhealthy: the MSS rules are not in place"},
		{"rules in place", Report{Plan: Plan{MSS: &MSSPlan{Clamp: true, State: MSSInSync}}}, "healthy"},
		{"a refused clamp", Report{Plan: Plan{MSS: &MSSPlan{Clamp: true, State: MSSUnavailable, Refused: "no outer", Detail: "d"}}},
			"unhealthy: mss_clamp is on but cannot be applied: no outer"},
		{"no iptables", Report{Plan: Plan{MSS: &MSSPlan{Clamp: true, State: MSSUnavailable, Detail: "no iptables"}}},
			"unhealthy: mss_clamp is on but cannot be applied: no iptables"},
		{"a broken path", Report{Paths: []PathCheck{{PathNeed: PathNeed{Host: "h"}, Verdict: PathBroken, Side: SideWindows, Evidence: "e"}}},
			"unhealthy: the path to h is broken (likely side: " + string(SideWindows) + "): e"},
		{"a path that carries", Report{Paths: []PathCheck{{PathNeed: PathNeed{Host: "h"}, Verdict: PathOK}}}, "healthy"},
	} {
		h := tt.r.Health()
		if got := h.String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		if h.Healthy != strings.HasPrefix(tt.want, "healthy") && tt.r.Plan.Refused == "" {
			t.Errorf("%s: Healthy = %v", tt.name, h.Healthy)
		}
	}
}

// Outcome is the plan's own words until something was done or not done.
func TestOutcomeTable(t *testing.T) {
	p := Plan{Actions: []Action{{Link: "eth0", From: 1280, To: 1360, Reason: "r"}}, Warnings: []string{"w"}, Notes: []string{"n"}}
	for _, tt := range []struct {
		name string
		r    Report
		want string
	}{
		{"dry run", Report{Plan: p}, p.String()},
		{"written", Report{Plan: p, Changes: []Change{{Action: p.Actions[0], Found: 1280, Wrote: true}}},
			"eth0: mtu 1280 → 1360 (r)\nwarning: w\nnote: n\n"},
		{"not done", Report{Plan: p, NotDone: []string{"eth0: mtu 1280 → 1360 (r)"}},
			"not done: eth0: mtu 1280 → 1360 (r)\nwarning: w\nnote: n\n"},
		{"mss only", Report{Plan: p, MSS: &MSSChange{Backend: "nft", Clamp: true}},
			"mss clamp: rules already in place (iptables nft)\nwarning: w\nnote: n\n"},
	} {
		if got := tt.r.Outcome(); got != tt.want {
			t.Errorf("%s:\n%s\nwant\n%s", tt.name, got, tt.want)
		}
	}
}

// DescribeState's words for each kind of host: what is said and what is
// left out when empty.
func TestDescribeStateTable(t *testing.T) {
	eth0 := detect.Link{Name: "eth0", Index: 2, MTU: 1280}
	ts := detect.Link{Name: "tailscale0", Index: 3, MTU: 1280, IPv6Addrs: 1,
		Tunnel: &detect.TunnelInfo{Spec: tunnel.Spec{Kind: tunnel.WireGuard}, Pattern: "tailscale0", Mark: 0x80000, Mask: 0xff0000, IdentifiedBy: "its name"}}
	for _, tt := range []struct {
		name string
		st   detect.State
		want string
	}{
		{"WSL2 with a tunnel", detect.State{
			Env:   detect.Environment{WSL: true, Version: 2, Kernel: "k", NetworkingMode: "nat", ModeEvidence: "wslinfo", Evidence: []string{"e"}},
			Links: []detect.Link{eth0, ts}, Outer: &eth0, OuterWhy: "the default route", Tunnels: []detect.Link{ts},
			Routes: []detect.Route{
				{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2, Dev: "eth0", MTU: 1280},
				{Family: 6, Table: detect.MainTable, Dst: "default", Gw: "fe80::1", LinkIndex: 2, Dev: "eth0"},
			},
			DownTunnels: []detect.Link{{Name: "wg0", MTU: 1420}},
		}, "environment: WSL2, networking mode nat\n" +
			"  kernel: k\n  evidence: e\n  mode: wslinfo\n" +
			"interfaces (mtu): eth0 1280, tailscale0 1280\n" +
			"outer interface: eth0 mtu 1280 (the default route)\n" +
			"  route default via 172.28.0.1 dev eth0: mtu 1280\n" +
			"tunnel: tailscale0 mtu 1280 (1 IPv6 addresses)\n" +
			"  kind: " + TunnelWords(ts) + "\n" +
			"tunnel: wg0 mtu 1420, down (left out)\n"},
		{"WSL with a note and no mode", detect.State{Env: detect.Environment{WSL: true, Version: 2, Kernel: "k", Note: "n"}},
			"environment: WSL2\n  n\n  kernel: k\ninterfaces (mtu): \nouter interface: none (no default route, no eth0)\ntunnels: none\n"},
		{"assumed", detect.State{Env: detect.Environment{WSL: true, Assumed: true, Note: "n", NetworkingMode: "nat", Kernel: "k"}},
			"environment: assumed WSL2 (--assume-wsl; n), networking mode nat\n  kernel: k\ninterfaces (mtu): \nouter interface: none (no default route, no eth0)\ntunnels: none\n"},
		{"assumed, no mode", detect.State{Env: detect.Environment{WSL: true, Assumed: true, Note: "n", Kernel: "k"}},
			"environment: assumed WSL2 (--assume-wsl; n)\n  kernel: k\ninterfaces (mtu): \nouter interface: none (no default route, no eth0)\ntunnels: none\n"},
		{"not WSL", detect.State{Env: detect.Environment{Note: "n", Kernel: "k"}},
			"environment: not WSL (n)\n  kernel: k\ninterfaces (mtu): \nouter interface: none (no default route, no eth0)\ntunnels: none\n"},
	} {
		if got := DescribeState(tt.st); got != tt.want {
			t.Errorf("%s:\n%s\nwant\n%s", tt.name, got, tt.want)
		}
	}
}

func TestTunnelWordsTable(t *testing.T) {
	wg := tunnel.Spec{Kind: tunnel.WireGuard}
	base := wg.Describe(1280)
	for _, tt := range []struct {
		name string
		info *detect.TunnelInfo
		want string
	}{
		{"no info", nil, base},
		{"identified", &detect.TunnelInfo{Spec: wg, Pattern: "wg*", Port: 51820, IdentifiedBy: "wgctrl"},
			base + "; selected by wg*; its packets: ipproto udp sport 51820 (evidence: wgctrl)"},
		{"not identified", &detect.TunnelInfo{Spec: wg, Unidentified: "no wgctrl"}, base + "; its packets cannot be told apart: no wgctrl"},
		{"nothing known", &detect.TunnelInfo{Spec: wg}, base},
	} {
		if got := TunnelWords(detect.Link{Name: "wg0", MTU: 1280, Kind: "wireguard", Tunnel: tt.info}); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// ScopeInForce reads the kernel at its bounds: a route at exactly what
// Windows chose is in force; our table's route counts with no mtu or one at
// least the outer MTU; our rule is ours only before tailscaled's and with
// no suppress_prefixlength; a tunnel that fits what Windows chose needs no
// rule.
func TestScopeInForceBoundsTable(t *testing.T) {
	eth0 := detect.Link{Name: "eth0", Index: 2, MTU: 1360}
	ts := detect.Link{Name: "tailscale0", Index: 3, MTU: 1280,
		Tunnel: &detect.TunnelInfo{Spec: tunnel.Spec{Kind: tunnel.WireGuard}, Mark: 0x80000, Mask: 0xff0000}}
	mainDefault := detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2, Dev: "eth0", MTU: 1280}
	ourDefault := detect.Route{Family: 4, Table: 5200, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2, Dev: "eth0"}
	skipMain := detect.Rule{Family: 4, Priority: 5190, Table: detect.MainTable, Mark: 0x80000, Mask: 0xff0000, SuppressPrefixlen: 0}
	toOurs := detect.Rule{Family: 4, Priority: 5200, Table: 5200, Mark: 0x80000, Mask: 0xff0000, SuppressPrefixlen: -1}
	state := func(edit func(*detect.State)) detect.State {
		st := detect.State{Outer: &eth0, Links: []detect.Link{eth0, ts}, Tunnels: []detect.Link{ts},
			Routes: []detect.Route{mainDefault, ourDefault}, Rules: []detect.Rule{skipMain, toOurs}}
		if edit != nil {
			edit(&st)
		}
		return st
	}
	scoped := Plan{Scope: config.ScopeTunnel, WindowsMTU: 1280}
	for _, tt := range []struct {
		name  string
		st    detect.State
		p     Plan
		ok    bool
		lines string // all lines joined, or a substring after "~"
	}{
		{"in force", state(nil), scoped, true,
			"route default via 172.28.0.1 dev eth0: packets leave at up to 1280 (its own mtu)\n" +
				"tailscale0: its packets (fwmark 0x80000/0xff0000) take table 5200, eth0 at 1360"},
		{"a route one above what Windows chose", state(func(st *detect.State) { st.Routes[0].MTU = 1281 }), scoped, false,
			"~packets leave at up to 1281 (its own mtu), above what Windows chose (1280)"},
		{"a route without an mtu", state(func(st *detect.State) { st.Routes[0].MTU = 0 }), scoped, false,
			"~packets leave at up to 1360 (eth0's mtu), above what Windows chose (1280)"},
		{"our table's route at the outer MTU", state(func(st *detect.State) { st.Routes[1].MTU = 1360 }), scoped, true, "~take table 5200"},
		{"our table's route below the outer MTU", state(func(st *detect.State) { st.Routes[1].MTU = 1359 }), scoped, false,
			"~table 5200 holds no default route through eth0"},
		{"our rule at tailscaled's first preference", state(func(st *detect.State) { st.Rules[1].Priority = detect.TailscaledFirstPref }), scoped, false,
			"~no ip rule sends its packets"},
		{"our rule just before it", state(func(st *detect.State) { st.Rules[1].Priority = detect.TailscaledFirstPref - 1 }), scoped, true, "~take table 5200"},
		{"our rule with suppress_prefixlength 0", state(func(st *detect.State) { st.Rules[1].SuppressPrefixlen = 0 }), scoped, false,
			"~no ip rule sends its packets"},
		{"a tunnel that fits what Windows chose", state(func(st *detect.State) {
			small := ts
			small.MTU = 1200
			st.Tunnels = []detect.Link{small}
			st.Rules = nil
		}), scoped, true, "route default via 172.28.0.1 dev eth0: packets leave at up to 1280 (its own mtu)"},
		{"scope all", state(nil), Plan{Scope: config.ScopeAll, WindowsMTU: 1280}, true, ""},
		{"nothing known of Windows", state(nil), Plan{Scope: config.ScopeTunnel}, true, ""},
		{"no outer interface", state(func(st *detect.State) { st.Outer = nil }), scoped, true, ""},
	} {
		lines, ok := ScopeInForce(tt.st, tt.p)
		got := strings.Join(lines, "\n")
		match := got == tt.lines
		if sub, isSub := strings.CutPrefix(tt.lines, "~"); isSub {
			match = strings.Contains(got, sub)
		}
		if ok != tt.ok || !match {
			t.Errorf("%s: ok %v\n%s\nwant ok %v\n%s", tt.name, ok, got, tt.ok, tt.lines)
		}
	}
}
