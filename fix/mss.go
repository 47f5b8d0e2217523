package fix

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// mssOverrideIPv6 is what the IPv6 rules use when the config sets mss: the
// setting is the IPv4 MSS, and IPv6 carries a header 20 bytes larger, so the
// same packet size means 20 bytes less payload.
func mssOverrideIPv6(mss int) int { return mss - (tunnel.IPv6Header - tunnel.IPv4Header) }

// MSSRule is one rule of ours, in the form `iptables -S` prints it, so the
// applier compares what the kernel has with what is wanted as plain text.
type MSSRule struct {
	Family firewall.Family `json:"family"`
	Chain  string          `json:"chain"`
	Spec   []string        `json:"spec"`
	Why    string          `json:"why,omitempty"`
}

func (r MSSRule) String() string {
	s := fmt.Sprintf("%s %s %s: %s", r.Family.Tool(), firewall.Mangle, r.Chain, strings.Join(r.Spec, " "))
	if r.Why != "" {
		s += " (" + r.Why + ")"
	}
	return s
}

// mssJumps are the two rules in built-in chains (see firewall.Jumps).
func mssJumps(f firewall.Family) []MSSRule {
	var out []MSSRule
	for _, j := range firewall.Jumps {
		out = append(out, MSSRule{Family: f, Chain: j.From, Spec: strings.Fields(j.Spec())})
	}
	return out
}

// MSSState is what the host's firewall holds compared with the plan.
type MSSState string

const (
	MSSUnknown     MSSState = ""            // not looked at (a pure plan)
	MSSInSync      MSSState = "in-sync"     // exactly the wanted rules and jumps
	MSSDiffers     MSSState = "differs"     // some of ours exist but not as wanted
	MSSAbsent      MSSState = "absent"      // none of ours exist
	MSSPresent     MSSState = "present"     // ours exist and clamping is off: remove them
	MSSUnavailable MSSState = "unavailable" // no iptables, no TCPMSS, or no MSS that fits: cannot clamp
)

// MSSPlan is the MSS part of a plan: the rules wanted in our chains, or, with
// Clamp false, the removal of rules a previous run left.
type MSSPlan struct {
	Clamp    bool      `json:"clamp"`
	Outer    string    `json:"outer,omitempty"`
	OuterMTU int       `json:"outer_mtu,omitempty"` // after the plan's MTU actions
	MSS4     int       `json:"mss_ipv4,omitempty"`
	MSS6     int       `json:"mss_ipv6,omitempty"`
	Why4     string    `json:"why_ipv4,omitempty"`
	Why6     string    `json:"why_ipv6,omitempty"`
	Rules    []MSSRule `json:"rules,omitempty"` // our chains' contents, both families
	// Refused says why the planner will not clamp (no outer interface, an
	// MSS below the minimum); State is then MSSUnavailable, and nothing in
	// the firewall is read or changed.
	Refused string `json:"refused,omitempty"`
	// Filled by the host, which is the only one that can look at iptables.
	Backend  string            `json:"backend,omitempty"`
	State    MSSState          `json:"state,omitempty"`
	Detail   string            `json:"detail,omitempty"` // why unavailable, what differs
	Families []firewall.Family `json:"families,omitempty"`
}

// NeedsChange says whether applying would touch the firewall.
func (m *MSSPlan) NeedsChange() bool {
	return m != nil && m.State != MSSInSync && m.State != MSSUnavailable
}

// wanted are our chains' rules of one family, in order.
func (m *MSSPlan) wanted(f firewall.Family) []MSSRule {
	var out []MSSRule
	for _, r := range m.Rules {
		if r.Family == f {
			out = append(out, r)
		}
	}
	return out
}

// firewallRules is the wanted state of one family for the firewall
// package; nil when clamping is off, which means: none of ours.
func (m *MSSPlan) firewallRules(f firewall.Family) *firewall.Rules {
	if m == nil || !m.Clamp {
		return nil
	}
	rules := &firewall.Rules{}
	for _, r := range m.wanted(f) {
		spec := strings.Join(r.Spec, " ")
		if r.Chain == firewall.ChainIn {
			rules.In = append(rules.In, spec)
		} else {
			rules.Out = append(rules.Out, spec)
		}
	}
	return rules
}

func (m *MSSPlan) families() []firewall.Family {
	if len(m.Families) > 0 {
		return m.Families
	}
	return firewall.Families
}

func (m *MSSPlan) String() string {
	var b strings.Builder
	via := "iptables"
	if m.Backend != "" {
		via = "iptables " + m.Backend
	}
	if !m.Clamp {
		fmt.Fprintf(&b, "mss clamp off: remove chains %s and %s and their jumps (%s)\n", firewall.ChainIn, firewall.ChainOut, via)
		return b.String()
	}
	if m.Refused != "" {
		fmt.Fprintf(&b, "mss clamp: cannot be applied (%s)\n", m.Refused)
		return b.String()
	}
	switch m.State {
	case MSSInSync:
		fmt.Fprintf(&b, "mss clamp: rules in place (%s)", via)
	case MSSUnavailable:
		fmt.Fprintf(&b, "mss clamp: cannot be applied (%s)", m.Detail)
	case MSSDiffers:
		fmt.Fprintf(&b, "mss clamp: rewrite our rules (%s; %s)", via, m.Detail)
	default:
		fmt.Fprintf(&b, "mss clamp: add rules (%s)", via)
	}
	fmt.Fprintf(&b, ": IPv4 %d, IPv6 %d\n", m.MSS4, m.MSS6)
	for _, f := range m.families() {
		for _, j := range mssJumps(f) {
			fmt.Fprintf(&b, "  %s\n", j)
		}
		for _, r := range m.wanted(f) {
			fmt.Fprintf(&b, "  %s\n", r)
		}
	}
	return b.String()
}

// planMSS adds the MSS part to p. It runs after the MTU part, because the MSS
// must fit the outer MTU that will be in force once the actions are applied.
func planMSS(p *Plan, st detect.State, cfg config.Config) {
	if !cfg.MSSClamp {
		return
	}
	m := &MSSPlan{Clamp: true}
	if cfg.MTUStrategy == config.StrategyOff {
		p.Warnings = append(p.Warnings, "MSS clamping helps TCP only: UDP (QUIC, large DNS replies) and ICMP "+
			"still hang until the MTUs fit (--mtu-strategy raise-outer)")
	} else {
		p.Notes = append(p.Notes, "MSS clamping helps TCP only; UDP and ICMP rely on the MTU part")
	}
	if st.Outer != nil {
		m.Outer, m.OuterMTU = st.Outer.Name, st.Outer.MTU
		for _, a := range p.Actions {
			if a.Link == st.Outer.Name {
				m.OuterMTU = a.To
			}
		}
	}
	wg := tunnel.Spec{Kind: tunnel.WireGuard}
	switch {
	case cfg.MSS != 0:
		m.MSS4, m.MSS6 = cfg.MSS, mssOverrideIPv6(cfg.MSS)
		m.Why4 = fmt.Sprintf("mss = %d in the config", cfg.MSS)
		m.Why6 = fmt.Sprintf("mss = %d in the config − 20 for the larger IPv6 header", cfg.MSS)
		if m.MSS6 < tunnel.MinMSS {
			refuseMSS(p, m, fmt.Sprintf("mss = %d in the config gives IPv6 segments an MSS of %d, below the minimum %d; set mss to at least %d",
				cfg.MSS, m.MSS6, tunnel.MinMSS, tunnel.MinMSS+cfg.MSS-m.MSS6))
			return
		}
	case st.Outer == nil:
		refuseMSS(p, m, "no outer interface to compute the MSS from; set mss or outer_interface")
		return
	default:
		m.MSS4, _, _ = wg.ClampMSS(m.OuterMTU, tunnel.IPv4)
		m.MSS6, _, _ = wg.ClampMSS(m.OuterMTU, tunnel.IPv6)
		outer := fmt.Sprintf("%s %d", m.Outer, m.OuterMTU)
		if m.OuterMTU != st.Outer.MTU {
			outer += " after the mtu change"
		}
		// An outer MTU this small leaves TCP no segment size a peer must
		// accept: clamping to it would break connections, not fix them.
		if min(m.MSS4, m.MSS6) < tunnel.MinMSS {
			refuseMSS(p, m, fmt.Sprintf("%s mtu %d gives an MSS of %d (IPv4) and %d (IPv6) through the tunnel, below the minimum %d",
				m.Outer, m.OuterMTU, m.MSS4, m.MSS6, tunnel.MinMSS))
			return
		}
		m.Why4 = fmt.Sprintf("%s: %s", outer, wg.ClampWhy(m.OuterMTU, tunnel.IPv4))
		m.Why6 = fmt.Sprintf("%s: %s", outer, wg.ClampWhy(m.OuterMTU, tunnel.IPv6))
	}
	names := clampInterfaces(st, cfg)
	for _, f := range firewall.Families {
		mss, why := m.MSS4, m.Why4
		if f == firewall.IPv6 {
			mss, why = m.MSS6, m.Why6
		}
		for _, dir := range []struct{ chain, flag string }{{firewall.ChainIn, "-i"}, {firewall.ChainOut, "-o"}} {
			for _, name := range names {
				m.Rules = append(m.Rules, MSSRule{Family: f, Chain: dir.chain, Why: why, Spec: clampSpec(dir.flag, name, mss)})
			}
		}
	}
	p.MSS = m
}

// refuseMSS turns the MSS part into a refusal: nothing is read from or
// written to the firewall, and the plan says why.
func refuseMSS(p *Plan, m *MSSPlan, why string) {
	m.Refused, m.State, m.Detail = why, MSSUnavailable, why
	m.MSS4, m.MSS6, m.Why4, m.Why6 = 0, 0, "", ""
	p.Warnings = append(p.Warnings, "mss_clamp: "+why+": MSS clamping is not applied")
	p.MSS = m
}

// clampSpec matches SYN and SYN-ACK and lowers only a larger MSS: TCPMSS
// --set-mss alone would also raise a smaller one, which a peer behind a
// narrower path chose for a reason.
func clampSpec(dirFlag, iface string, mss int) []string {
	return []string{dirFlag, iface, "-p", "tcp", "-m", "tcp", "--tcp-flags", "SYN,RST", "SYN",
		"-m", "tcpmss", "--mss", strconv.Itoa(mss+1) + ":65535", "-j", "TCPMSS", "--set-mss", strconv.Itoa(mss)}
}

// clampInterfaces turns the configured tunnels into iptables interface
// matches. Names and "prefix*" patterns become rules that hold whether or not
// the tunnel exists now (iptables matches by name, "wg+" by prefix), so a
// tunnel that reconnects does not change the rules; other globs can only be
// expanded to the tunnels present.
func clampInterfaces(st detect.State, cfg config.Config) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	outer := cfg.OuterInterface
	if st.Outer != nil {
		outer = st.Outer.Name
	}
	// Clamping helps only where a tunnel's packets grow with the segment
	// inside (not ZeroTier, which fills its UDP payloads whatever they carry).
	clamps := func(spec tunnel.Spec) bool {
		_, ok, _ := spec.ClampMSS(1500, tunnel.IPv4)
		return ok
	}
	patterns := slices.Clone(cfg.Tunnels)
	for _, t := range cfg.TunnelSettings {
		patterns = append(patterns, t.Name)
	}
	for _, pattern := range patterns {
		if !clamps(cfg.Spec(pattern, "")) {
			continue
		}
		prefix, isPrefix := strings.CutSuffix(pattern, "*")
		matchesOuter := false
		if outer != "" {
			matchesOuter, _ = path.Match(pattern, outer)
		}
		switch {
		case !strings.ContainsAny(pattern, "*?[") && pattern != outer:
			add(pattern)
		case isPrefix && prefix != "" && !strings.ContainsAny(prefix, "*?[") && !matchesOuter:
			add(prefix + "+")
		default:
			for _, t := range st.Tunnels {
				if ok, _ := path.Match(pattern, t.Name); ok && clamps(detect.SpecOf(t)) {
					add(t.Name)
				}
			}
		}
	}
	// Kernel WireGuard devices are tunnels whatever their name.
	for _, t := range st.Tunnels {
		if t.Kind == "wireguard" && cfg.Pattern(t.Name) == "" && clamps(detect.SpecOf(t)) {
			add(t.Name)
		}
	}
	return names
}
