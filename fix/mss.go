package fix

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
)

// Family is an IP version, named the way iptables' binaries are.
type Family string

const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// Families are both, in the order rules are listed and applied.
var Families = []Family{IPv4, IPv6}

// Tool is the iptables binary of the family, for messages.
func (f Family) Tool() string {
	if f == IPv6 {
		return "ip6tables"
	}
	return "iptables"
}

// tcpHeaders is what an MSS leaves out of a packet: IP header + 20 TCP.
func (f Family) tcpHeaders() int {
	if f == IPv6 {
		return 60
	}
	return 40
}

// The mangle table and the chains of our own. Everything wslmtu adds lives in
// these two chains plus one jump each from a built-in chain, so revert (and a
// reader of iptables-save) can tell our rules from anyone else's.
const (
	MangleTable = "mangle"
	ChainIn     = "WSLMTU-IN"  // jumped from PREROUTING: SYN and SYN-ACK arriving on a tunnel
	ChainOut    = "WSLMTU-OUT" // jumped from POSTROUTING: leaving on a tunnel, local and forwarded
)

// wireGuardPad is WireGuard's padding unit: the inner packet grows to a
// multiple of 16 (measured: with eth0 1280 the largest inner packet that
// crosses is 1216, not 1220).
const wireGuardPad = 16

// ClampMSS is the largest MSS whose segments, once WireGuard has padded them
// and added its overhead, still fit an outer MTU: floor16(outer − 80) minus
// the family's IP and TCP headers. 1160 (IPv4) and 1140 (IPv6) for 1280.
func ClampMSS(outerMTU int, f Family) int {
	inner := (outerMTU - WireGuardOverhead) / wireGuardPad * wireGuardPad
	return inner - f.tcpHeaders()
}

// MSSOverrideIPv6 is what the IPv6 rules use when the config sets mss: the
// setting is the IPv4 MSS, and IPv6 carries a header 20 bytes larger, so the
// same packet size means 20 bytes less payload.
func MSSOverrideIPv6(mss int) int { return mss - 20 }

// MSSRule is one rule of ours, in the form `iptables -S` prints it, so the
// applier compares what the kernel has with what is wanted as plain text.
type MSSRule struct {
	Family Family   `json:"family"`
	Chain  string   `json:"chain"`
	Spec   []string `json:"spec"`
	Why    string   `json:"why,omitempty"`
}

func (r MSSRule) String() string {
	s := fmt.Sprintf("%s %s %s: %s", r.Family.Tool(), MangleTable, r.Chain, strings.Join(r.Spec, " "))
	if r.Why != "" {
		s += " (" + r.Why + ")"
	}
	return s
}

// line is the rule as `iptables -S` prints it.
func (r MSSRule) line() string { return "-A " + r.Chain + " " + strings.Join(r.Spec, " ") }

// mssJumps are the two rules in built-in chains. PREROUTING sees every packet
// arriving on a tunnel and POSTROUTING every packet leaving on one, whether
// local or forwarded (a subnet router), so two hooks cover all four cases.
func mssJumps(f Family) []MSSRule {
	return []MSSRule{
		{Family: f, Chain: "PREROUTING", Spec: []string{"-p", "tcp", "-j", ChainIn}},
		{Family: f, Chain: "POSTROUTING", Spec: []string{"-p", "tcp", "-j", ChainOut}},
	}
}

// MSSState is what the host's firewall holds compared with the plan.
type MSSState string

const (
	MSSUnknown     MSSState = ""            // not looked at (a pure plan)
	MSSInSync      MSSState = "in-sync"     // exactly the wanted rules and jumps
	MSSDiffers     MSSState = "differs"     // some of ours exist but not as wanted
	MSSAbsent      MSSState = "absent"      // none of ours exist
	MSSPresent     MSSState = "present"     // ours exist and clamping is off: remove them
	MSSUnavailable MSSState = "unavailable" // no iptables or no TCPMSS: cannot clamp
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
	// Filled by the host, which is the only one that can look at iptables.
	Backend  string   `json:"backend,omitempty"`
	State    MSSState `json:"state,omitempty"`
	Detail   string   `json:"detail,omitempty"` // why unavailable, what differs
	Families []Family `json:"families,omitempty"`
}

// NeedsChange says whether applying would touch the firewall.
func (m *MSSPlan) NeedsChange() bool {
	return m != nil && m.State != MSSInSync && m.State != MSSUnavailable
}

// wanted are our chains' rules of one family, in order.
func (m *MSSPlan) wanted(f Family) []MSSRule {
	var out []MSSRule
	for _, r := range m.Rules {
		if r.Family == f {
			out = append(out, r)
		}
	}
	return out
}

func (m *MSSPlan) families() []Family {
	if len(m.Families) > 0 {
		return m.Families
	}
	return Families
}

func (m *MSSPlan) String() string {
	var b strings.Builder
	via := "iptables"
	if m.Backend != "" {
		via = "iptables " + m.Backend
	}
	if !m.Clamp {
		fmt.Fprintf(&b, "mss clamp off: remove chains %s and %s and their jumps (%s)\n", ChainIn, ChainOut, via)
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
	switch {
	case cfg.MSS != 0:
		m.MSS4, m.MSS6 = cfg.MSS, MSSOverrideIPv6(cfg.MSS)
		m.Why4 = fmt.Sprintf("mss = %d in the config", cfg.MSS)
		m.Why6 = fmt.Sprintf("mss = %d in the config − 20 for the larger IPv6 header", cfg.MSS)
	case st.Outer == nil:
		p.Warnings = append(p.Warnings, "mss_clamp: no outer interface to compute the MSS from; set mss or outer_interface")
		return
	default:
		m.MSS4, m.MSS6 = ClampMSS(m.OuterMTU, IPv4), ClampMSS(m.OuterMTU, IPv6)
		outer := fmt.Sprintf("%s %d", m.Outer, m.OuterMTU)
		if m.OuterMTU != st.Outer.MTU {
			outer += " after the mtu change"
		}
		m.Why4 = fmt.Sprintf("%s: floor16(%d − %d) − 40, WireGuard pads to 16 bytes", outer, m.OuterMTU, WireGuardOverhead)
		m.Why6 = fmt.Sprintf("%s: floor16(%d − %d) − 60, WireGuard pads to 16 bytes", outer, m.OuterMTU, WireGuardOverhead)
	}
	names := clampInterfaces(st, cfg)
	for _, f := range Families {
		mss, why := m.MSS4, m.Why4
		if f == IPv6 {
			mss, why = m.MSS6, m.Why6
		}
		for _, dir := range []struct{ chain, flag string }{{ChainIn, "-i"}, {ChainOut, "-o"}} {
			for _, name := range names {
				m.Rules = append(m.Rules, MSSRule{Family: f, Chain: dir.chain, Why: why, Spec: clampSpec(dir.flag, name, mss)})
			}
		}
	}
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
	for _, pattern := range cfg.Tunnels {
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
				if ok, _ := path.Match(pattern, t.Name); ok {
					add(t.Name)
				}
			}
		}
	}
	return names
}
