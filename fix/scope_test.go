package fix

import (
	"errors"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

const (
	scopedRaise = `ip rule 5190: from all fwmark 0x80000/0xff0000 lookup main suppress_prefixlength 0: add (tailscale0's own packets skip the main table's default route)
ip rule 5200: from all fwmark 0x80000/0xff0000 lookup 5200: add (tailscale0's own packets take the default route without the mtu, in table 5200)
route default via 172.28.0.1 dev eth0 table 5200: add (the default route without an mtu, for tailscale0's own packets)
route default via 172.28.0.1 dev eth0: mtu 1280 (what Windows chose; only tailscale0's own packets use 1360)
eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)`
	raiseOnly = `eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)`
)

func scopeCfg(strategy config.Strategy, scope config.Scope) config.Config {
	cfg := config.Default()
	cfg.MTUStrategy, cfg.OuterScope = strategy, scope
	return cfg
}

// wgKernel is WSL with a WireGuard tunnel wg0 instead of tailscale0, which
// answers wgctrl with dev (nil: not readable).
func wgKernel(ethMTU, wgMTU int, dev *detect.WireGuardDevice) *fakekernel.Kernel {
	k := fakekernel.NewWSL(ethMTU, wgMTU)
	k.Rename("tailscale0", "wg0")
	if dev != nil {
		k.SetWireGuard("wg0", *dev)
	}
	return k
}

// The planner's table for the tunnel scope: scope × strategy × whether
// what Windows chose is enough × whether the tunnel's packets are known.
func TestPlanScopeTable(t *testing.T) {
	portDev := &detect.WireGuardDevice{ListenPort: 51820}
	markDev := &detect.WireGuardDevice{FwMark: 0x1234, ListenPort: 51820}
	configured := scopeCfg(config.Auto, config.ScopeTunnel)
	configured.TunnelSettings = []config.TunnelSpec{{Name: "wg0", FwMark: "0x4000/0xc000"}}
	tests := []struct {
		name    string
		k       *fakekernel.Kernel
		cfg     config.Config
		want    string
		warning string
	}{
		{"auto, scope tunnel, W not enough, tailscale0 known by name", fakekernel.NewWSL(1280, 1280), config.Default(), scopedRaise, ""},
		{"raise-outer, scope tunnel", fakekernel.NewWSL(1280, 1280), scopeCfg(config.RaiseOuter, config.ScopeTunnel), scopedRaise, ""},
		{"raise-outer, scope all", fakekernel.NewWSL(1280, 1280), scopeCfg(config.RaiseOuter, config.ScopeAll), raiseOnly, ""},
		{"W enough: nothing at all is added", fakekernel.NewWSL(1400, 1280), config.Default(), "", ""},
		{"W enough, scope all", fakekernel.NewWSL(1400, 1280), scopeCfg(config.RaiseOuter, config.ScopeAll), "", ""},
		{"lower-tunnel ignores the scope", fakekernel.NewWSL(1400, 1400), scopeCfg(config.LowerTunnel, config.ScopeTunnel),
			"tailscale0: mtu 1400 → 1320 (eth0 1400 − 80 WireGuard/IPv6 overhead)", ""},
		{"WireGuard with a fwmark (wgctrl)", wgKernel(1280, 1420, markDev), config.Default(),
			`ip rule 5190: from all fwmark 0x1234 lookup main suppress_prefixlength 0: add (wg0's own packets skip the main table's default route)
ip rule 5200: from all fwmark 0x1234 lookup 5200: add (wg0's own packets take the default route without the mtu, in table 5200)
route default via 172.28.0.1 dev eth0 table 5200: add (the default route without an mtu, for wg0's own packets)
route default via 172.28.0.1 dev eth0: mtu 1280 (what Windows chose; only wg0's own packets use 1500)
eth0: mtu 1280 → 1500 (wg0 1420 + 80 WireGuard/IPv6 overhead)`, ""},
		{"WireGuard with only a listen port (wgctrl)", wgKernel(1280, 1420, portDev), config.Default(),
			`ip rule 5190: from all ipproto udp sport 51820 lookup main suppress_prefixlength 0: add (wg0's own packets skip the main table's default route)
ip rule 5200: from all ipproto udp sport 51820 lookup 5200: add (wg0's own packets take the default route without the mtu, in table 5200)
route default via 172.28.0.1 dev eth0 table 5200: add (the default route without an mtu, for wg0's own packets)
route default via 172.28.0.1 dev eth0: mtu 1280 (what Windows chose; only wg0's own packets use 1500)
eth0: mtu 1280 → 1500 (wg0 1420 + 80 WireGuard/IPv6 overhead)`, ""},
		{"the device's own port beats a [[tunnel]] mark (the device is what marks or not)", wgKernel(1280, 1420, portDev), configured,
			`ip rule 5190: from all ipproto udp sport 51820 lookup main suppress_prefixlength 0: add (wg0's own packets skip the main table's default route)
ip rule 5200: from all ipproto udp sport 51820 lookup 5200: add (wg0's own packets take the default route without the mtu, in table 5200)
route default via 172.28.0.1 dev eth0 table 5200: add (the default route without an mtu, for wg0's own packets)
route default via 172.28.0.1 dev eth0: mtu 1280 (what Windows chose; only wg0's own packets use 1500)
eth0: mtu 1280 → 1500 (wg0 1420 + 80 WireGuard/IPv6 overhead)`, ""},
		{"a [[tunnel]] mark where wgctrl cannot read the device", wgKernel(1280, 1420, nil), configured,
			`ip rule 5190: from all fwmark 0x4000/0xc000 lookup main suppress_prefixlength 0: add (wg0's own packets skip the main table's default route)
ip rule 5200: from all fwmark 0x4000/0xc000 lookup 5200: add (wg0's own packets take the default route without the mtu, in table 5200)
route default via 172.28.0.1 dev eth0 table 5200: add (the default route without an mtu, for wg0's own packets)
route default via 172.28.0.1 dev eth0: mtu 1280 (what Windows chose; only wg0's own packets use 1500)
eth0: mtu 1280 → 1500 (wg0 1420 + 80 WireGuard/IPv6 overhead)`, ""},
		{"tailscale0 without tailscaled's rules: its name is no evidence", fakekernel.NewWSLUnmarked(1280, 1280), config.Default(), raiseOnly,
			`tailscale0's own packets cannot be recognised (tailscaled's rules (fwmark 0x80000/0xff0000, priority 5210–5270) are not in place`},
		{"unidentified: scope all for this case, with the key that fixes it", wgKernel(1280, 1420, nil), config.Default(),
			"eth0: mtu 1280 → 1500 (wg0 1420 + 80 WireGuard/IPv6 overhead)",
			`wg0's own packets cannot be recognised (it is not a WireGuard device wslmtu can read (wgctrl)); eth0 is raised for all packets (outer_scope "all" for this case); name them in a [[tunnel]] table (name = "wg0" with fwmark = "0x…" or port = N)`},
		{"unidentified but W enough: no warning", wgKernel(1500, 1420, nil), config.Default(), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.k, "nat", tt.cfg)
			p := w.plan()
			if got := changeText(p); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
			warnings := strings.Join(p.Warnings, "\n")
			if (tt.warning == "") != (warnings == "") || !strings.Contains(warnings, tt.warning) {
				t.Errorf("warnings %q, want %q", warnings, tt.warning)
			}
			// Applying it makes the host as planned, and a second plan is empty.
			before := dump(t, tt.k)
			w.apply()
			if again := w.plan(); !again.Empty() {
				t.Errorf("a second plan is not empty:\n%s", again)
			}
			// Revert leaves every interface, route and rule as before.
			w.revert()
			if after := dump(t, tt.k); after != before {
				t.Errorf("revert left\n%s\nwant\n%s", after, before)
			}
		})
	}
}

// What WSL, tailscaled and users do after a fix: each is repaired from the
// baseline, never from wslmtu's own output, and nothing wslmtu did not
// write is put back.
func TestPlanFollowsChangesFromTheBaseline(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "nat", config.Default())
	initial := dump(t, k)
	w.apply()

	// WSL pushes 1280 again: only eth0 is repaired.
	k.Reset("eth0", 1280)
	if got := changeText(w.plan()); got != raiseOnly {
		t.Errorf("after a reset:\n%s", got)
	}
	w.apply()

	// WSL pushes 1300 (a new Windows minimum): the route follows first.
	k.Reset("eth0", 1300)
	want := `route default via 172.28.0.1 dev eth0: mtu 1280 → 1300 (what Windows chose; only tailscale0's own packets use 1360)
eth0: mtu 1300 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)`
	if got := changeText(w.plan()); got != want {
		t.Errorf("after WSL pushed 1300:\n%s\nwant\n%s", got, want)
	}
	w.apply()

	// WSL rewrites the default route without our MTU: put it back.
	k.ReplaceRoute(detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2})
	want = "route default via 172.28.0.1 dev eth0: mtu 1300 (what Windows chose; only tailscale0's own packets use 1360)"
	if got := changeText(w.plan()); got != want {
		t.Errorf("after WSL rewrote the route:\n%s\nwant\n%s", got, want)
	}
	w.apply()

	// WSL pushes 1400, enough for the tunnel: everything wslmtu added goes,
	// and eth0 keeps what WSL gave it.
	k.Reset("eth0", 1400)
	want = `route default via 172.28.0.1 dev eth0: mtu 1300 → none (back to the value before wslmtu changed it: eth0 1400 already carries the tunnels)
route default via 172.28.0.1 dev eth0 table 5200: delete (wslmtu added it; eth0 1400 already carries the tunnels)
ip rule 5200: from all fwmark 0x80000/0xff0000 lookup 5200: delete (wslmtu added it; eth0 1400 already carries the tunnels)
ip rule 5190: from all fwmark 0x80000/0xff0000 lookup main suppress_prefixlength 0: delete (wslmtu added it; eth0 1400 already carries the tunnels)`
	if got := changeText(w.plan()); !sameLines(got, want) {
		t.Errorf("after WSL pushed 1400:\n%s\nwant\n%s", got, want)
	}
	w.apply()
	if rec := w.record(); !rec.Empty() {
		t.Errorf("the record still lists %+v", rec)
	}
	if got := strings.Replace(dump(t, k), "eth0 1400", "eth0 1280", 1); got != initial {
		t.Errorf("left behind:\n%s\nwant\n%s", got, initial)
	}
}

// Changing away from a strategy undoes what the old
// one did where the new one would not have done it.
func TestPlanStrategySwitchUndoesTheOld(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "nat", config.Default())
	initial := dump(t, k)
	w.apply()
	w.cfg.MTUStrategy = config.StrategyOff
	p := w.plan()
	if got := changeText(p); !strings.Contains(got, "eth0: mtu 1360 → 1280 (back to the value before wslmtu changed it: mtu_strategy is off)") {
		t.Errorf("switching to off:\n%s", got)
	}
	w.apply()
	if got := dump(t, k); got != initial {
		t.Errorf("after off:\n%s\nwant\n%s", got, initial)
	}
	// raise-outer → lower-tunnel: eth0 back, the tunnel lowered, in one plan.
	w.cfg.MTUStrategy = config.RaiseOuter
	w.apply()
	w.cfg.MTUStrategy = config.LowerTunnel
	got := changeText(w.plan())
	for _, want := range []string{"eth0: mtu 1360 → 1280 (back to the value before wslmtu changed it", "tailscale0: mtu 1280 → 1200 (eth0 1280 − 80"} {
		if !strings.Contains(got, want) {
			t.Errorf("raise-outer → lower-tunnel:\n%s\nlacks %q", got, want)
		}
	}
	w.apply()
	if k.MTU("eth0") != 1280 || k.MTU("tailscale0") != 1200 {
		t.Errorf("eth0 %d, tailscale0 %d", k.MTU("eth0"), k.MTU("tailscale0"))
	}
}

// No plan feeds on its own output: repeated fixes with
// lower-tunnel keep the tunnel at one value.
func TestPlanNeverFeedsOnItsOwnOutput(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "nat", withStrategy(config.LowerTunnel))
	for i := 0; i < 3; i++ {
		w.apply()
	}
	if got := k.MTU("tailscale0"); got != 1200 {
		t.Errorf("tailscale0 %d after three fixes, want 1200", got)
	}
	if got := k.MTU("eth0"); got != 1280 {
		t.Errorf("eth0 %d, want 1280", got)
	}
}

// Revert only undoes values that are still wslmtu's.
func TestRevertLeavesAValueSomebodyElseSet(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "nat", scopeCfg(config.RaiseOuter, config.ScopeAll))
	w.apply()
	k.Reset("eth0", 1500) // the user
	got := strings.Join(w.revert(), "\n")
	if k.MTU("eth0") != 1500 || !strings.Contains(got, "eth0: mtu 1500 is not the 1360 wslmtu wrote: left alone") {
		t.Errorf("eth0 %d after revert:\n%s", k.MTU("eth0"), got)
	}
}

// A tunnel that comes back with a new listen port gets its rules updated.
func TestPlanFollowsANewListenPort(t *testing.T) {
	k := wgKernel(1280, 1420, &detect.WireGuardDevice{ListenPort: 51820})
	w := newWorld(t, k, "nat", config.Default())
	w.apply()
	k.DeleteLink("wg0")
	k.AddLink(detect.Link{Name: "wg0", MTU: 1420, Kind: "wireguard", Up: true})
	k.SetWireGuard("wg0", detect.WireGuardDevice{ListenPort: 40000})
	got := changeText(w.plan())
	for _, want := range []string{
		"ip rule 5190: from all ipproto udp sport 40000 lookup main suppress_prefixlength 0: add",
		"ip rule 5190: from all ipproto udp sport 51820 lookup main suppress_prefixlength 0: delete",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("after a reconnect on a new port:\n%s\nlacks %q", got, want)
		}
	}
	w.apply()
	if again := w.plan(); !again.Empty() {
		t.Errorf("not converged:\n%s", again)
	}
}

// The rules' priorities and the table avoid whatever is there (tailscaled
// at 5210+, table 52; somebody at 5190 and table 5200).
func TestPlanPolicyAvoidsWhatIsThere(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	for _, r := range []detect.Rule{
		{Family: 4, Priority: 5190, Table: 99, SuppressPrefixlen: -1},
		{Family: 4, Priority: 5210, Table: detect.MainTable, Mark: 0x80000, Mask: 0xff0000, SuppressPrefixlen: -1},
		{Family: 4, Priority: 5270, Table: 52, SuppressPrefixlen: -1},
	} {
		k.AddRule(r)
	}
	k.ReplaceRoute(detect.Route{Family: 4, Table: 5200, Dst: "10.0.0.0/8", LinkIndex: 2})
	k.Writes()
	p := newWorld(t, k, "nat", config.Default()).plan()
	got := changeText(p)
	if !strings.Contains(got, "ip rule 5170: from all fwmark 0x80000/0xff0000 lookup main suppress_prefixlength 0: add") ||
		!strings.Contains(got, "ip rule 5180: from all fwmark 0x80000/0xff0000 lookup 5201: add") {
		t.Errorf("plan:\n%s", got)
	}
}

// Networking modes × tunnel kinds × strategies.
func TestPlanModesAndKinds(t *testing.T) {
	zt := func(ethMTU int) *fakekernel.Kernel {
		k := fakekernel.NewWSL(ethMTU, 2800)
		k.Rename("tailscale0", "zt3jnkd6ic")
		return k
	}
	tests := []struct {
		name, mode string
		k          *fakekernel.Kernel
		cfg        config.Config
		want       string // substrings of the plan, one per line
		chosen     config.Strategy
		warning    string
		mss        bool
	}{
		{"nat, auto: raise-outer", "nat", fakekernel.NewWSL(1280, 1280), config.Default(), raiseOnly, config.RaiseOuter, "", false},
		{"consomme, auto: raise-outer", "consomme", fakekernel.NewWSL(1280, 1280), config.Default(), raiseOnly, config.RaiseOuter, "", false},
		{"virtioproxy is consomme", "virtioproxy", fakekernel.NewWSL(1280, 1280), config.Default(), raiseOnly, config.RaiseOuter, "", false},
		{"unknown mode, auto: raise-outer", "", fakekernel.NewWSL(1280, 1280), config.Default(), raiseOnly, config.RaiseOuter, "", false},
		{"mirrored, auto, room to lower: lower-tunnel", "mirrored", fakekernel.NewWSL(1400, 1420), config.Default(),
			"tailscale0: mtu 1420 → 1320 (eth0 1400 − 80 WireGuard/IPv6 overhead)", config.LowerTunnel, "", false},
		{"mirrored, auto, no room above 1280: MSS clamping", "mirrored", fakekernel.NewWSL(1280, 1280), config.Default(),
			"", config.LowerTunnel, "clamping the TCP MSS instead", true},
		{"mirrored, raise-outer warns what it risks", "mirrored", fakekernel.NewWSL(1280, 1280), scopeCfg(config.RaiseOuter, config.ScopeAll),
			raiseOnly, config.RaiseOuter, "microsoft/WSL#41419", false},
		{"none: nothing to fix", "none", fakekernel.NewWSL(1280, 1280), config.Default(), "", config.StrategyOff, "", false},
		{"ZeroTier, nat: 1480 whatever its mtu", "nat", zt(1280), scopeCfg(config.Auto, config.ScopeAll),
			"eth0: mtu 1280 → 1480 (zt3jnkd6ic: ZeroTier sends 1432-byte UDP payloads + 48 UDP/IPv6)", config.RaiseOuter, "", false},
		{"ZeroTier, nat, scope tunnel: unidentified", "nat", zt(1280), config.Default(),
			"eth0: mtu 1280 → 1480", config.RaiseOuter, `name = "zt3jnkd6ic" with fwmark`, false},
		{"ZeroTier, lower-tunnel refused", "nat", zt(1280), withStrategy(config.LowerTunnel), "", config.LowerTunnel, "cannot lower zt3jnkd6ic", false},
		{"ZeroTier, eth0 1500 is enough", "nat", zt(1500), config.Default(), "", config.RaiseOuter, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newWorld(t, tt.k, tt.mode, tt.cfg).plan()
			got := changeText(p)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
			if p.Chosen != tt.chosen {
				t.Errorf("chosen %s, want %s (%s)", p.Chosen, tt.chosen, p.ChosenWhy)
			}
			warnings := strings.Join(p.Warnings, "\n")
			if !strings.Contains(warnings, tt.warning) || (tt.warning == "" && warnings != "") {
				t.Errorf("warnings %q, want %q", warnings, tt.warning)
			}
			if (p.MSS != nil && p.MSS.Clamp) != tt.mss {
				t.Errorf("MSS part %+v, want clamping %v", p.MSS, tt.mss)
			}
		})
	}
}

// A tunnel pattern that selects the outer interface is refused before
// anything is planned.
func TestObserveRefusesAPatternThatSelectsTheOuterInterface(t *testing.T) {
	for _, pattern := range []string{"eth*", "eth0", "e?h0"} {
		cfg := config.Default()
		cfg.Tunnels = []string{"tailscale0", pattern}
		k := fakekernel.NewWSL(1280, 1280)
		_, err := detect.Observe(k.Sources("nat"), k, cfg)
		var pe *detect.PatternError
		if !errors.As(err, &pe) || pe.Pattern != pattern || pe.Interface != "eth0" {
			t.Errorf("pattern %q: err = %v", pattern, err)
		}
	}
}

// sameLines compares two multi-line texts as sets of lines in order of
// appearance within each phase is not asserted.
func sameLines(a, b string) bool {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(la) != len(lb) {
		return false
	}
	seen := map[string]int{}
	for _, l := range la {
		seen[l]++
	}
	for _, l := range lb {
		seen[l]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// A tunnel that reconnects is gone for a moment: what wslmtu put in place
// stays, so a reconnect costs no writes at all.
func TestPlanKeepsItsChangesWhileNoTunnelIsUp(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "nat", config.Default())
	w.apply()
	k.DeleteLink("tailscale0")
	p := w.plan()
	if got := changeText(p); got != "" || !strings.Contains(strings.Join(p.Notes, "\n"), "stays in place until a tunnel is back") {
		t.Errorf("with no tunnel up:\n%s\nnotes %q", got, p.Notes)
	}
	w.apply()
	k.AddLink(detect.Link{Name: "tailscale0", MTU: 1280, Kind: "tun", Up: true})
	if got := w.apply(); len(got) != 0 {
		t.Errorf("the reconnect wrote %q", got)
	}
}

// WSL recreating eth0 leaves it without a default route for a moment: the
// tunnel scope's table and rules stay, and the route gets its mtu back when
// it returns.
func TestPlanKeepsThePolicyWhileTheDefaultRouteIsGone(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "nat", config.Default())
	w.apply()
	main := detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}
	k.DeleteRoute(main)
	k.Writes()
	if got := changeText(w.plan()); got != "" {
		t.Errorf("with no default route:\n%s", got)
	}
	k.ReplaceRoute(main)
	want := "route default via 172.28.0.1 dev eth0: mtu 1280 (what Windows chose; only tailscale0's own packets use 1360)"
	if got := changeText(w.plan()); got != want {
		t.Errorf("with the route back:\n%s\nwant\n%s", got, want)
	}
}
