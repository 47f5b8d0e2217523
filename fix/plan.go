// Package fix turns an observation into an ordered plan of actions and
// applies it. The planner is pure, so --dry-run, status, the agent's logs and
// the tests all print the same words.
package fix

import (
	"fmt"
	"strings"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
)

// WireGuardOverhead is what a tunnel adds to every packet with an IPv6
// underlay: 40 IPv6 + 8 UDP + 32 WireGuard. An IPv4 underlay needs 60, but the
// NAT may carry either, and 80 is right for both (measured: 1340 hangs on IPv6).
const WireGuardOverhead = 80

// Action is one change, with the reason it is needed.
type Action struct {
	Link   string `json:"interface"`
	From   int    `json:"from"`
	To     int    `json:"to"`
	Reason string `json:"reason"`
}

func (a Action) String() string {
	return fmt.Sprintf("%s: mtu %d → %d (%s)", a.Link, a.From, a.To, a.Reason)
}

// Plan is what fix would do now, and why.
type Plan struct {
	Strategy config.Strategy `json:"mtu_strategy"`
	Actions  []Action        `json:"actions"`
	// Refused is set when the plan must not be applied (not WSL); the
	// actions are still listed so the user sees what would happen.
	Refused  string   `json:"refused,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// MSS is the clamping part; nil when mss_clamp is off and nothing of
	// ours is left in the firewall.
	MSS *MSSPlan `json:"mss,omitempty"`
}

// Empty means the host is as it should be.
func (p Plan) Empty() bool { return len(p.Actions) == 0 && !p.MSS.NeedsChange() }

func (p Plan) String() string {
	var b strings.Builder
	for _, a := range p.Actions {
		fmt.Fprintln(&b, a)
	}
	if p.MSS != nil {
		b.WriteString(p.MSS.String())
	}
	if p.Empty() && p.Refused == "" {
		fmt.Fprintln(&b, "nothing to do")
	}
	for _, w := range p.Warnings {
		fmt.Fprintln(&b, "warning:", w)
	}
	for _, n := range p.Notes {
		fmt.Fprintln(&b, "note:", n)
	}
	if p.Refused != "" {
		fmt.Fprintln(&b, "not applied:", p.Refused)
	}
	return b.String()
}

// NewPlan decides what to change. It never lowers the outer interface and
// never raises a tunnel: both would trade one breakage for another.
func NewPlan(st detect.State, cfg config.Config) Plan {
	p := planMTU(st, cfg)
	if !(st.Env.WSL && st.Env.Version == 1) {
		planMSS(&p, st, cfg)
	}
	return p
}

func planMTU(st detect.State, cfg config.Config) Plan {
	p := Plan{Strategy: cfg.MTUStrategy}
	if !st.Env.WSL {
		p.Refused = "this is not WSL (" + st.Env.Note + "); use --assume-wsl (or assume_wsl = true) to fix it anyway"
	}
	if st.Env.WSL && st.Env.Version == 1 {
		p.Notes = append(p.Notes, st.Env.Note)
		return p
	}
	if st.Env.NetworkingMode == "mirrored" {
		p.Notes = append(p.Notes, "mirrored networking: WSL's NAT is not in the path, but the tunnel still needs room on the outer interface")
	}
	for _, name := range st.MissingTunnels {
		p.Notes = append(p.Notes, name+" is not present (tunnel not connected?)")
	}
	for _, t := range st.DownTunnels {
		p.Notes = append(p.Notes, fmt.Sprintf("%s is down (mtu %d): left out until it comes up", t.Name, t.MTU))
	}
	switch {
	case cfg.MTUStrategy == config.StrategyOff:
		p.Notes = append(p.Notes, "mtu_strategy = off: MTUs are left alone")
		return p
	case st.Outer == nil:
		p.Notes = append(p.Notes, "no outer interface: there is no default route and no eth0")
		return p
	case len(st.Tunnels) == 0:
		p.Notes = append(p.Notes, fmt.Sprintf("no tunnel found (%s): nothing to fit", strings.Join(cfg.Tunnels, ", ")))
		return p
	}
	strategy := cfg.MTUStrategy
	if strategy == config.Auto {
		strategy = config.RaiseOuter
		if st.Env.NetworkingMode == "mirrored" {
			strategy = config.LowerTunnel
		}
	}
	switch strategy {
	case config.RaiseOuter:
		planRaiseOuter(&p, st, cfg)
	case config.LowerTunnel:
		planLowerTunnel(&p, st)
	}
	return p
}

func planRaiseOuter(p *Plan, st detect.State, cfg config.Config) {
	outer := *st.Outer
	widest := st.Tunnels[0]
	for _, t := range st.Tunnels[1:] {
		if t.MTU > widest.MTU {
			widest = t
		}
	}
	need := widest.MTU + WireGuardOverhead
	if need <= outer.MTU {
		return
	}
	reason := fmt.Sprintf("%s %d + %d WireGuard/IPv6 overhead", widest.Name, widest.MTU, WireGuardOverhead)
	target := need
	if need > cfg.MaxOuterMTU {
		target = cfg.MaxOuterMTU
		p.Warnings = append(p.Warnings, fmt.Sprintf(
			"%s needs %s %d but max_outer_mtu is %d: large packets will still be lost; "+
				"use --mtu-strategy lower-tunnel (%s → %d) or --mss-clamp, or raise max_outer_mtu if Windows carries more",
			widest.Name, outer.Name, need, cfg.MaxOuterMTU, widest.Name, outer.MTU-WireGuardOverhead))
		reason += fmt.Sprintf(", capped at max_outer_mtu %d", cfg.MaxOuterMTU)
	}
	if target > outer.MTU {
		p.Actions = append(p.Actions, Action{Link: outer.Name, From: outer.MTU, To: target, Reason: reason})
	}
}

func planLowerTunnel(p *Plan, st detect.State) {
	outer := *st.Outer
	target := outer.MTU - WireGuardOverhead
	for _, t := range st.Tunnels {
		if t.MTU <= target {
			continue
		}
		p.Actions = append(p.Actions, Action{Link: t.Name, From: t.MTU, To: target,
			Reason: fmt.Sprintf("%s %d − %d WireGuard/IPv6 overhead", outer.Name, outer.MTU, WireGuardOverhead)})
		if target < config.MinMTU {
			p.Warnings = append(p.Warnings, fmt.Sprintf(
				"%s below %d loses its IPv6 addresses (Linux requires %d for IPv6) and setting it back does not restore them; "+
					"prefer --mtu-strategy raise-outer", t.Name, config.MinMTU, config.MinMTU))
		}
	}
}
