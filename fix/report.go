package fix

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
)

// DescribeState renders an observation in the README's words.
func DescribeState(st detect.State) string {
	var b strings.Builder
	env := st.Env
	switch {
	case env.WSL && env.Assumed:
		fmt.Fprintf(&b, "environment: assumed WSL2 (--assume-wsl; %s)", env.Note)
		if env.NetworkingMode != "" {
			fmt.Fprintf(&b, ", networking mode %s", env.NetworkingMode)
		}
		b.WriteString("\n")
	case env.WSL:
		fmt.Fprintf(&b, "environment: WSL%d", env.Version)
		if env.NetworkingMode != "" {
			fmt.Fprintf(&b, ", networking mode %s", env.NetworkingMode)
		}
		b.WriteString("\n")
		if env.Note != "" {
			fmt.Fprintf(&b, "  %s\n", env.Note)
		}
	default:
		fmt.Fprintf(&b, "environment: not WSL (%s)\n", env.Note)
	}
	fmt.Fprintf(&b, "  kernel: %s\n", env.Kernel)
	for _, e := range env.Evidence {
		fmt.Fprintf(&b, "  evidence: %s\n", e)
	}
	if env.ModeEvidence != "" {
		fmt.Fprintf(&b, "  mode: %s\n", env.ModeEvidence)
	}
	links := make([]string, 0, len(st.Links))
	for _, l := range st.Links {
		links = append(links, fmt.Sprintf("%s %d", l.Name, l.MTU))
	}
	fmt.Fprintf(&b, "interfaces (mtu): %s\n", strings.Join(links, ", "))
	if st.Outer != nil {
		fmt.Fprintf(&b, "outer interface: %s mtu %d (%s)\n", st.Outer.Name, st.Outer.MTU, st.OuterWhy)
		for _, r := range st.DefaultRoutes(st.Outer.Index) {
			if r.MTU != 0 {
				fmt.Fprintf(&b, "  route %s: mtu %d\n", r, r.MTU)
			}
		}
	} else {
		b.WriteString("outer interface: none (no default route, no eth0)\n")
	}
	if len(st.Tunnels) == 0 {
		b.WriteString("tunnels: none\n")
	}
	for _, t := range st.Tunnels {
		fmt.Fprintf(&b, "tunnel: %s mtu %d (%d IPv6 addresses)\n", t.Name, t.MTU, t.IPv6Addrs)
		fmt.Fprintf(&b, "  kind: %s\n", TunnelWords(t))
	}
	for _, t := range st.DownTunnels {
		fmt.Fprintf(&b, "tunnel: %s mtu %d, down (left out)\n", t.Name, t.MTU)
	}
	return b.String()
}

// TunnelWords is a tunnel's kind, requirement and how its packets are
// recognised, for status and doctor.
func TunnelWords(t detect.Link) string {
	spec := detect.SpecOf(t)
	s := spec.Describe(t.MTU)
	if t.Tunnel != nil {
		if t.Tunnel.Pattern != "" {
			s += "; selected by " + t.Tunnel.Pattern
		}
		switch {
		case t.Tunnel.Identified():
			s += "; its packets: " + t.Tunnel.Selector() + " (evidence: " + t.Tunnel.IdentifiedBy + ")"
		case t.Tunnel.Unidentified != "":
			s += "; its packets cannot be told apart: " + t.Tunnel.Unidentified
		}
	}
	return s
}

// Health is the one verdict on a host: status, doctor, the metrics
// (wslmtu_healthy) and the agent's unit status text all take it from
// Report.Health over a fresh read of the kernel, the firewall and the
// revert record (Host.Plan), never from a model of their own.
type Health struct {
	Healthy bool `json:"healthy"`
	// Managed is false where wslmtu changes nothing (not WSL): healthy,
	// since that is no fault.
	Managed bool `json:"managed"`
	// Problems say what is not as the config asks.
	Problems []string `json:"problems,omitempty"`
}

// Health: healthy when what the config asks for is in force: nothing to
// change, the tunnel scope in force as the kernel holds it, the revert
// record usable, and the MSS rules in place when clamping is asked for (an
// impossible clamp is not in force either).
func (r Report) Health() Health {
	if r.Plan.Refused != "" {
		return Health{Healthy: true}
	}
	h := Health{Managed: true}
	if r.RecordErr != "" {
		h.Problems = append(h.Problems, r.RecordErr)
	}
	if n := len(r.Plan.Changes()); n == 1 {
		h.Problems = append(h.Problems, "1 change pending")
	} else if n > 1 {
		h.Problems = append(h.Problems, fmt.Sprintf("%d changes pending", n))
	}
	// Read from the kernel: a planner that thinks all is done while the
	// scope is not in force is a fault too (doctor's outer scope check).
	if _, ok := ScopeInForce(r.State, r.Plan); !ok && len(r.Plan.Changes()) == 0 {
		h.Problems = append(h.Problems, "the tunnel scope is not in force although nothing is left to change")
	}
	switch m := r.Plan.MSS; {
	case m.NeedsChange() && !m.Clamp:
		h.Problems = append(h.Problems, "mss_clamp is off but our MSS chains are still there")
	case m.NeedsChange():
		h.Problems = append(h.Problems, "the MSS rules are not in place")
	case m != nil && m.Clamp && m.State == MSSUnavailable:
		h.Problems = append(h.Problems, "mss_clamp is on but cannot be applied: "+cmp.Or(m.Refused, m.Detail))
	}
	// A path that fails while the plan is in force is a fault no write of
	// the plan mends: only a packet that crosses proves the fix.
	for _, p := range r.Paths {
		if p.Broken() {
			h.Problems = append(h.Problems, fmt.Sprintf("the path to %s is broken (likely side: %s): %s", p.Host, p.Side, p.Evidence))
		}
	}
	h.Healthy = len(h.Problems) == 0
	return h
}

// String is the verdict in one line: "healthy", "not managed: …" or
// "unhealthy: " and the problems.
func (h Health) String() string {
	switch {
	case !h.Managed:
		return "not managed: wslmtu changes nothing on this host"
	case h.Healthy:
		return "healthy"
	}
	return "unhealthy: " + strings.Join(h.Problems, "; ")
}

// Healthy is Health().Healthy.
func (r Report) Healthy() bool { return r.Health().Healthy }

func (r Report) String() string {
	var b strings.Builder
	b.WriteString(DescribeState(r.State))
	fmt.Fprintf(&b, "plan (%s", r.Plan.Strategy)
	if r.Plan.Chosen != r.Plan.Strategy {
		fmt.Fprintf(&b, ": %s", r.Plan.Chosen)
	}
	if r.Plan.Scope != "" {
		fmt.Fprintf(&b, ", outer_scope %s", r.Plan.Scope)
	}
	b.WriteString("):\n")
	if r.Plan.ChosenWhy != "" {
		fmt.Fprintf(&b, "  %s\n", r.Plan.ChosenWhy)
	}
	for _, line := range strings.Split(strings.TrimRight(r.Plan.String(), "\n"), "\n") {
		fmt.Fprintf(&b, "  %s\n", line)
	}
	if lines, ok := ScopeInForce(r.State, r.Plan); len(lines) > 0 {
		word := "in force"
		if !ok {
			word = "NOT in force"
		}
		fmt.Fprintf(&b, "outer scope %s (read from the kernel):\n", word)
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}

// Outcome is what a fix run did, in the plan's words: the changes written,
// then what was not done because a step failed, then the plan's warnings
// and notes, which still apply after it.
func (r Report) Outcome() string {
	if len(r.Changes) == 0 && r.MSS == nil && len(r.NotDone) == 0 {
		return r.Plan.String()
	}
	var b strings.Builder
	for _, c := range r.Changes {
		fmt.Fprintln(&b, c)
	}
	for _, s := range r.NotDone {
		fmt.Fprintln(&b, "not done:", s)
	}
	if r.MSS != nil {
		fmt.Fprintln(&b, r.MSS)
	}
	for _, w := range r.Plan.Warnings {
		fmt.Fprintln(&b, "warning:", w)
	}
	for _, n := range r.Plan.Notes {
		fmt.Fprintln(&b, "note:", n)
	}
	return b.String()
}

// ScopeInForce reads, from what the kernel holds (never from what the plan
// intended), whether the tunnel scope is in force: every default route
// through the outer interface keeps at most what Windows chose, and each
// raised tunnel's packets have their rules and their route without the mtu.
// Each line says one fact; ok is false when any is missing.
func ScopeInForce(st detect.State, p Plan) (lines []string, ok bool) {
	if st.Outer == nil || p.Scope != config.ScopeTunnel || p.WindowsMTU == 0 {
		return nil, true
	}
	ok = true
	w, outer := p.WindowsMTU, *st.Outer
	for _, r := range st.DefaultRoutes(outer.Index) {
		eff, src := r.MTU, "its own mtu"
		if eff == 0 {
			eff, src = outer.MTU, outer.Name+"'s mtu"
		}
		if eff > w {
			ok = false
			lines = append(lines, fmt.Sprintf("route %s: packets leave at up to %d (%s), above what Windows chose (%d)", r, eff, src, w))
		} else {
			lines = append(lines, fmt.Sprintf("route %s: packets leave at up to %d (%s)", r, eff, src))
		}
	}
	for _, t := range st.Tunnels {
		if detect.SpecOf(t).Need(t.MTU) <= w || !t.Tunnel.Identified() {
			continue
		}
		for _, family := range []int{4, 6} {
			if !hasDefault(st, outer.Index, family) {
				continue
			}
			sel := selectorRule(t.Tunnel, family)
			rule, found := findTableRule(st.Rules, sel)
			switch {
			case !found:
				ok = false
				lines = append(lines, fmt.Sprintf("%s: no %s rule sends its packets (%s) to a table of their own", t.Name, detect.Tool(family), t.Tunnel.Selector()))
			case !tableHasDefault(st, rule.Table, outer.Index, family):
				ok = false
				lines = append(lines, fmt.Sprintf("%s: %s rule %s, but table %d holds no default route through %s", t.Name, detect.Tool(family), rule, rule.Table, outer.Name))
			default:
				lines = append(lines, fmt.Sprintf("%s: its packets (%s) take table %d, %s at %d", t.Name, t.Tunnel.Selector(), rule.Table, outer.Name, outer.MTU))
			}
		}
	}
	return lines, ok
}

func hasDefault(st detect.State, index, family int) bool {
	for _, r := range st.DefaultRoutes(index) {
		if r.Family == family {
			return true
		}
	}
	return false
}

// findTableRule finds a rule with the selector that looks up a table other
// than main (the second of the scope's two rules).
func findTableRule(rules []detect.Rule, sel detect.Rule) (detect.Rule, bool) {
	for _, r := range rules {
		if r.Family == sel.Family && r.Mark == sel.Mark && r.Mask == sel.Mask && r.IPProto == sel.IPProto && r.Sport == sel.Sport &&
			r.Table != detect.MainTable && r.Table != 0 && r.SuppressPrefixlen < 0 && !r.Other &&
			r.Priority < detect.TailscaledFirstPref {
			return r, true
		}
	}
	return detect.Rule{}, false
}

func tableHasDefault(st detect.State, table, index, family int) bool {
	for _, r := range st.Routes {
		if r.Table == table && r.IsDefault() && r.LinkIndex == index && r.Family == family && (r.MTU == 0 || r.MTU >= st.Outer.MTU) {
			return true
		}
	}
	return false
}
