package fix

import (
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
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
