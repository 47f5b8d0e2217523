package fix

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// "nothing to do" is said of an empty plan that may be applied, never of a
// refused one (which says why it is not applied instead).
func TestPlanStringSaysNothingToDoOnlyWhenApplicable(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Plan
		want string
	}{
		{"empty", Plan{}, "nothing to do\n"},
		{"refused", Plan{Refused: "this is not WSL"}, "not applied: this is not WSL\n"},
		{"an action", Plan{Actions: []Action{{Link: "eth0", From: 1280, To: 1360, Reason: "r"}}}, "eth0: mtu 1280 → 1360 (r)\n"},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	p := Plan{Warnings: []string{"w"}, Notes: []string{"n"}}
	if got := p.String(); !strings.HasSuffix(got, "warning: w\nnote: n\n") {
		t.Errorf("warnings and notes: %q", got)
	}
}

// Once tailscaled's fix is adopted, later plans say whose 1360 it is; a
// 1360 wslmtu wrote itself gets no such note.
func TestPlanNamesWhoSetAnAdoptedValue(t *testing.T) {
	k := fakekernel.NewWSL(1360, 1280)
	st := observe(t, k, "nat", config.Default())
	note := "eth0 1360 was set by tailscaled's own WSL fix; 1280 is what Windows chose, and revert puts it back"
	for _, tt := range []struct {
		setBy string
		want  bool
	}{{"tailscaled", true}, {"", false}} {
		rec := recordWith(map[string]LinkRecord{"eth0": {Before: 1280, Wrote: 1360, SetBy: tt.setBy}})
		p := NewPlan(st, rec, config.Default())
		if got := slices.Contains(p.Notes, note); got != tt.want {
			t.Errorf("set by %q: notes %q", tt.setBy, p.Notes)
		}
	}
}

// eth0 at 1360 is taken for tailscaled's fix only while tailscaled is there:
// its interface or its rules.
func TestPlanAdoptsTailscaledsFixOnlyWithTailscaled(t *testing.T) {
	eth0 := detect.Link{Name: "eth0", Index: 2, MTU: 1360, Up: true}
	env := detect.Environment{WSL: true, Version: 2, NetworkingMode: detect.ModeNAT}
	ts := detect.Link{Name: "tailscale0", Index: 3, MTU: 1280, Kind: "tun", Up: true}
	for _, tt := range []struct {
		name  string
		links []detect.Link
		rules []detect.Rule
		adopt bool
	}{
		{"nothing of tailscaled", []detect.Link{eth0}, nil, false},
		{"its interface", []detect.Link{eth0, ts}, nil, true},
		{"its rules", []detect.Link{eth0}, fakekernel.TailscaledRules(4), true},
	} {
		st := detect.State{Env: env, Outer: &eth0, Links: tt.links, Rules: tt.rules}
		p := NewPlan(st, newRecord(), config.Default())
		if got := p.Adopt["eth0"] == (LinkRecord{Before: 1280, Wrote: 1360, SetBy: "tailscaled"}); got != tt.adopt {
			t.Errorf("%s: adopt %v, notes %q", tt.name, p.Adopt, p.Notes)
		}
	}
}

// The raise at its bounds, and the words that say why.
func TestPlanRaiseOuterBoundsTable(t *testing.T) {
	at := func(mtu int) config.Config {
		cfg := config.Default()
		cfg.MaxOuterMTU = mtu
		return cfg
	}
	withEth1 := func(st detect.State) detect.State {
		st.Links = append(st.Links, detect.Link{Name: "eth1", Index: 9, MTU: 1400})
		return st
	}
	for _, tt := range []struct {
		name  string
		st    detect.State
		rec   Record
		cfg   config.Config
		want  string // the actions
		check func(Plan) string
	}{
		{"two tunnels of one need: the first names it", wslState(1280, tun("tailscale0", 1280), tun("wg0", 1280)), newRecord(), config.Default(),
			"eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)", nil},
		{"an outer MTU that is the need: nothing to raise, and wslmtu's other values go back", withEth1(wslState(1360, tun("wg0", 1280))),
			recordWith(map[string]LinkRecord{"eth1": {Before: 1500, Wrote: 1400}}), config.Default(),
			"eth1: mtu 1400 → 1500 (back to the value before wslmtu changed it: eth0 1360 already carries the tunnels)", nil},
		{"a need that is the cap: no cap", wslState(1280, tun("tailscale0", 1280)), newRecord(), at(1360),
			"eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)", func(p Plan) string {
				if len(p.Warnings) > 0 {
					return fmt.Sprintf("warnings %q", p.Warnings)
				}
				return ""
			}},
		{"capped at the outer MTU: no raise, no scope", wslState(1400, tun("wg0", 1420)), newRecord(), at(1400), "", func(p Plan) string {
			if p.Scope != "" || p.WindowsMTU != 0 {
				return fmt.Sprintf("scope %q, what Windows chose %d", p.Scope, p.WindowsMTU)
			}
			return ""
		}},
		{"capped, and lowering the tunnel to 68 is the other way", wslState(148, tun("wg0", 1420)), newRecord(), at(1400),
			"eth0: mtu 148 → 1400 (wg0 1420 + 80 WireGuard/IPv6 overhead, capped at max_outer_mtu 1400)", func(p Plan) string {
				if !strings.Contains(strings.Join(p.Warnings, "\n"), "use --mtu-strategy lower-tunnel (wg0 → 68) or --mss-clamp") {
					return fmt.Sprintf("warnings %q", p.Warnings)
				}
				return ""
			}},
		{"capped, and the tunnel cannot go below 68", wslState(147, tun("wg0", 1420)), newRecord(), at(1400),
			"eth0: mtu 147 → 1400 (wg0 1420 + 80 WireGuard/IPv6 overhead, capped at max_outer_mtu 1400)", func(p Plan) string {
				if w := strings.Join(p.Warnings, "\n"); !strings.Contains(w, "use --mss-clamp") || strings.Contains(w, "lower-tunnel") {
					return fmt.Sprintf("warnings %q", p.Warnings)
				}
				return ""
			}},
		{"auto with no networking mode is NAT's choice, said as unknown", func() detect.State {
			st := wslState(1280, tun("tailscale0", 1280))
			st.Env.NetworkingMode = ""
			return st
		}(), newRecord(), config.Default(), "eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)", func(p Plan) string {
			if p.Chosen != config.RaiseOuter || !strings.HasPrefix(p.ChosenWhy, "networking mode unknown: treated like NAT") {
				return fmt.Sprintf("chosen %s: %s", p.Chosen, p.ChosenWhy)
			}
			return ""
		}},
	} {
		p := NewPlan(tt.st, tt.rec, tt.cfg)
		var lines []string
		for _, a := range p.Actions {
			lines = append(lines, a.String())
		}
		if got := strings.Join(lines, "\n"); got != tt.want {
			t.Errorf("%s: actions\n%s\nwant\n%s", tt.name, got, tt.want)
		}
		if tt.check != nil {
			if msg := tt.check(p); msg != "" {
				t.Errorf("%s: %s", tt.name, msg)
			}
		}
	}
}

// Under the tunnel scope, a tunnel that what Windows chose carries exactly
// needs nothing: no rules of its own, and not knowing its packets does not
// widen the raise to every packet.
func TestScopeLeavesATunnelThatFitsWhatWindowsChose(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	k.AddLink(detect.Link{Name: "wg0", MTU: 1200, Kind: "tun", Up: true}) // 1200 + 80 = 1280; unidentified
	p := NewPlan(observe(t, k, "nat", config.Default()), newRecord(), config.Default())
	if p.Scope != config.ScopeTunnel || strings.Contains(strings.Join(p.Warnings, "\n"), "wg0") {
		t.Errorf("scope %q, warnings %q", p.Scope, p.Warnings)
	}
	for _, r := range p.Rules {
		if !strings.Contains(r.Reason, "tailscale0") || strings.Contains(r.Reason, "wg0") {
			t.Errorf("rule %s", r)
		}
	}
	if len(p.Rules) == 0 {
		t.Error("no rules for tailscale0")
	}
}

// Lowering the tunnel at its bounds: a tunnel already at its target is left
// alone without a word; 68 is still an MTU; 1280 keeps IPv6, so auto lowers
// to it rather than clamping, and says nothing about IPv6.
func TestPlanLowerTunnelBoundsTable(t *testing.T) {
	mirrored := func(st detect.State) detect.State {
		st.Env.NetworkingMode = detect.ModeMirrored
		return st
	}
	for _, tt := range []struct {
		name     string
		st       detect.State
		cfg      config.Config
		want     string
		warnings string // all of them, joined
	}{
		{"already at the target", wslState(1280, tun("tailscale0", 1200)), withStrategy(config.LowerTunnel), "", ""},
		{"down to 68", wslState(148, tun("tailscale0", 1280)), withStrategy(config.LowerTunnel),
			"tailscale0: mtu 1280 → 68 (eth0 148 − 80 WireGuard/IPv6 overhead)",
			"tailscale0 below 1280 loses its IPv6 addresses (Linux requires 1280 for IPv6) and setting it back does not restore them; prefer --mtu-strategy raise-outer"},
		{"ZeroTier cannot be lowered: raise instead", wslState(1280, tun("zt3jnkd6ic", 2800)), withStrategy(config.LowerTunnel), "",
			"cannot lower zt3jnkd6ic: ZeroTier sends 1432-byte UDP payloads whatever the interface's mtu, so lowering it does not help; use mtu_strategy = \"raise-outer\""},
		{"ZeroTier in mirrored mode: only a larger Windows adapter helps", mirrored(wslState(1280, tun("zt3jnkd6ic", 2800))), withStrategy(config.LowerTunnel), "",
			"cannot lower zt3jnkd6ic: ZeroTier sends 1432-byte UDP payloads whatever the interface's mtu, so lowering it does not help; in mirrored mode only a Windows adapter with a larger mtu than 1280 helps"},
		{"auto in mirrored mode down to 1280", mirrored(wslState(1360, tun("wg0", 1400))), config.Default(),
			"wg0: mtu 1400 → 1280 (eth0 1360 − 80 WireGuard/IPv6 overhead)", ""},
	} {
		p := NewPlan(tt.st, newRecord(), tt.cfg)
		var lines []string
		for _, a := range p.Actions {
			lines = append(lines, a.String())
		}
		if got := strings.Join(lines, "\n"); got != tt.want {
			t.Errorf("%s: actions\n%s\nwant\n%s", tt.name, got, tt.want)
		}
		if got := strings.Join(p.Warnings, "\n"); got != tt.warnings {
			t.Errorf("%s: warnings\n%s\nwant\n%s", tt.name, got, tt.warnings)
		}
		if p.MSS != nil {
			t.Errorf("%s: clamps: %s", tt.name, p.MSS)
		}
	}
}

// Steps go in Apply's order: our table's stale routes leave first only when
// new ones come in (they share the kernel's key); otherwise after the
// interfaces, with the route MTUs put back.
func TestPlanStepsOrderTable(t *testing.T) {
	lower := Action{Link: "eth0", From: 1360, To: 1280, Reason: "back"}
	del := RouteAction{Op: RouteDelete, Route: ourRoute, Reason: "stale"}
	unset := RouteAction{Op: RouteSetMTU, Route: mainRoute, From: 1280, To: 0, Reason: "back"}
	add := RouteAction{Op: RouteAdd, Route: ourRoute, Reason: "new"}
	for _, tt := range []struct {
		name string
		p    Plan
		want []string
	}{
		{"no route added: the delete comes last", Plan{Routes: []RouteAction{del, unset}, Actions: []Action{lower}},
			[]string{lower.String(), del.String(), unset.String()}},
		{"a route added: the delete comes first", Plan{Routes: []RouteAction{add, del}, Actions: []Action{lower}},
			[]string{del.String(), add.String(), lower.String()}},
	} {
		if got := tt.p.Changes(); !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n%s\nwant\n%s", tt.name, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

// Two default routes through the outer interface: a copy of each in our
// table (here as many routes as rules), added in the kernel's order.
func TestScopeWithTwoDefaultRoutes(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	st0 := observe(t, k, "nat", config.Default())
	for _, r := range st0.Routes {
		if r.IsDefault() && r.Table == detect.MainTable {
			r.Metric += 100
			k.AppendRoute(r)
		}
	}
	st := observe(t, k, "nat", config.Default())
	p := NewPlan(st, newRecord(), config.Default())
	if p.Policy == nil || len(p.Policy.Routes) != 2 || len(p.Policy.Rules) != 2 {
		t.Fatalf("policy %+v", p.Policy)
	}
	var adds []detect.Route
	for _, r := range p.Routes {
		if r.Op == RouteAdd {
			adds = append(adds, r.Route)
		}
	}
	if !slices.Equal(adds, p.Policy.Routes) {
		t.Errorf("added in the order\n%v\nwant\n%v", adds, p.Policy.Routes)
	}
	if p.Routes[0].Op != RouteAdd || p.Routes[len(p.Routes)-1].Op != RouteSetMTU {
		t.Errorf("route actions out of order: %v", p.Routes)
	}
}
