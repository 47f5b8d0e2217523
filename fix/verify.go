package fix

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// A written plan proves nothing about a path: the MTU can be right and
// the rules in while a 55 kB reply never arrives. Only a packet that
// crosses proves it. These are the words of a path check: which size a
// path must carry under the plan in force, and, once probed, whose side a
// failure is likely on. The probing itself is internal/probe.Verify.

// PathRoute is the kernel's route to one host (netlink RouteGet, `ip route
// get`), looked up by the caller.
type PathRoute struct {
	Host         string
	Addr         netip.Addr
	LinkIndex    int
	Interface    string
	InterfaceMTU int
	RouteMTU     int // the route's (or a learned path's) mtu; 0: none
}

// PathNeed is the size a path must carry, and why.
type PathNeed struct {
	Host      string `json:"host"`
	Address   string `json:"address"`
	Interface string `json:"interface"`
	Tunnel    bool   `json:"tunnel"`
	// Size is the IP packet, headers included, that must cross with DF.
	Size int    `json:"size"`
	Why  string `json:"why"`
	// WindowsMTU is what Windows chose for the outer interface (the plan's
	// record of it, else the outer interface's MTU now); 0 without one.
	WindowsMTU int `json:"windows_mtu,omitempty"`
	// Clamp: Size is what the MSS clamp assumes, below the tunnel's MTU.
	Clamp bool `json:"clamp,omitempty"`
}

// PathNeedOf says which size the path to r's host must carry: through a
// tunnel, the tunnel's MTU (what every program sending through it may
// fill), or what the MSS clamp assumes when clamping is what keeps that
// tunnel working; outside the tunnels, what the kernel sends on that route,
// which under outer_scope "tunnel" is what Windows chose (the route's mtu)
// and under "all" the raised outer MTU — a size the Windows side must then
// carry too.
func PathNeedOf(st detect.State, p Plan, r PathRoute) PathNeed {
	n := PathNeed{Host: r.Host, Address: r.Addr.String(), Interface: r.Interface}
	sends := r.InterfaceMTU
	if r.RouteMTU > 0 && r.RouteMTU < sends {
		sends = r.RouteMTU
	}
	n.Size = sends
	n.WindowsMTU = p.WindowsMTU
	if n.WindowsMTU == 0 && st.Outer != nil {
		n.WindowsMTU = st.Outer.MTU
	}
	if t, ok := findTunnel(st, r.LinkIndex); ok {
		n.Tunnel = true
		n.Why = fmt.Sprintf("through tunnel %s: its MTU %d", t.Name, t.MTU)
		if r.RouteMTU > 0 && r.RouteMTU < t.MTU {
			n.Why = fmt.Sprintf("through tunnel %s: its route's mtu %d", t.Name, r.RouteMTU)
		}
		covered := st.Outer == nil || detect.SpecOf(t).Need(t.MTU) <= st.Outer.MTU
		if clamp := clampPacket(p, r.Addr); clamp > 0 && clamp < n.Size && !covered {
			// Clamping instead of an MTU change (the outer interface does
			// not carry the tunnel's MTU): only TCP is kept below it, so
			// the clamp's size is what is promised.
			n.Size, n.Clamp = clamp, true
			n.Why = fmt.Sprintf("through tunnel %s under the MSS clamp: %d-byte TCP segments (the tunnel's MTU %d stays, so larger UDP is not covered)", t.Name, clamp, t.MTU)
		}
		return n
	}
	switch {
	case st.Outer == nil || r.LinkIndex != st.Outer.Index:
		n.Why = fmt.Sprintf("outside the tunnels, via %s: what it sends (%d)", r.Interface, sends)
	case n.WindowsMTU > 0 && sends > n.WindowsMTU:
		n.Why = fmt.Sprintf("outside the tunnels, via %s: it sends up to %d, above what Windows chose (%d), so the Windows side must carry it (outer_scope %q)", r.Interface, sends, n.WindowsMTU, p.Scope)
	case r.RouteMTU > 0 && r.RouteMTU < r.InterfaceMTU:
		n.Why = fmt.Sprintf("outside the tunnels, via %s: what Windows chose (%d), kept by the route's mtu", r.Interface, sends)
	default:
		n.Why = fmt.Sprintf("outside the tunnels, via %s: what Windows chose (%d)", r.Interface, sends)
	}
	return n
}

func findTunnel(st detect.State, index int) (detect.Link, bool) {
	i := slices.IndexFunc(st.Tunnels, func(l detect.Link) bool { return l.Index == index })
	if i < 0 {
		return detect.Link{}, false
	}
	return st.Tunnels[i], true
}

// clampPacket is the IP packet a clamped TCP segment makes towards addr,
// 0 when no clamp is in force.
func clampPacket(p Plan, addr netip.Addr) int {
	m := p.MSS
	if m == nil || !m.Clamp || m.State == MSSUnavailable {
		return 0
	}
	if addr.Is6() && !addr.Is4In6() {
		if m.MSS6 == 0 {
			return 0
		}
		return m.MSS6 + tunnel.IPv6Header + tcpHeader
	}
	if m.MSS4 == 0 {
		return 0
	}
	return m.MSS4 + tunnel.IPv4Header + tcpHeader
}

const tcpHeader = 20

// PathVerdict is the outcome of one path check.
type PathVerdict string

const (
	PathOK PathVerdict = "ok"
	// PathBroken: the host answers, but not at the size the path must carry.
	PathBroken PathVerdict = "broken"
	// PathNoAnswer: not even a small echo came back: nothing is proven
	// either way.
	PathNoAnswer PathVerdict = "no-answer"
	// PathError: the check could not run (no route, no socket, no name).
	PathError PathVerdict = "error"
)

// PathSide is where a broken path is likely broken.
type PathSide string

const (
	// SideNotFixed: the plan is not in force yet; the fix, not the path,
	// is what is missing.
	SideNotFixed PathSide = "not fixed"
	// SideWindows: the Windows adapter (a VPN's) carries less than WSL
	// sends it and says nothing.
	SideWindows PathSide = "Windows adapter"
	// SideTunnelPeer: the tunnel's outer packets leave at a size the outer
	// interface carries, yet the far side (the peer or its path) loses them.
	SideTunnelPeer PathSide = "tunnel peer"
	// SideOurRules: wslmtu's own rules do not do what the plan says: the
	// tunnel's packets leave at what Windows chose as if the rules missed
	// them, or the route mtu that keeps other packets small is gone.
	SideOurRules PathSide = "our own rules"
)

// PathProbe is what crossed: Largest is the largest IP packet that came
// back with DF (-1: none), Answered whether any echo did.
type PathProbe struct {
	Crossed  bool
	Answered bool
	Largest  int
}

// JudgePath gives a probed path its verdict and, when broken, the likely
// side and the evidence, from the plan and what the kernel holds.
func JudgePath(st detect.State, p Plan, n PathNeed, pr PathProbe) (PathVerdict, PathSide, string) {
	switch {
	case pr.Crossed:
		return PathOK, "", fmt.Sprintf("%d-byte DF packets cross", n.Size)
	case !pr.Answered || pr.Largest < 0:
		return PathNoAnswer, "", fmt.Sprintf("%s answers no echo with DF: is it up, and does it allow ping?", n.Host)
	}
	lost := fmt.Sprintf("packets up to %d bytes cross, %d-byte ones are lost", pr.Largest, n.Size)
	if pending := len(p.Changes()); pending > 0 || p.MSS.NeedsChange() {
		return PathBroken, SideNotFixed, fmt.Sprintf("%s; the plan is not in force (%d changes pending): run `wslmtu fix`", lost, pending)
	}
	_, scopeOK := ScopeInForce(st, p)
	w := n.WindowsMTU
	if !n.Tunnel {
		switch {
		case w > 0 && n.Size > w && p.Scope == config.ScopeAll:
			return PathBroken, SideWindows, fmt.Sprintf("%s: the Windows adapter carries what Windows chose (%d) and drops larger packets without a word, and outer_scope \"all\" sends every packet at up to %d; set outer_scope = \"tunnel\"", lost, w, n.Size)
		case w > 0 && n.Size > w && !scopeOK:
			return PathBroken, SideOurRules, fmt.Sprintf("%s: the tunnel scope is not in force, so packets that should keep what Windows chose (%d) leave at up to %d", lost, w, n.Size)
		}
		return PathBroken, SideWindows, fmt.Sprintf("%s: the Windows side carries less than WSL sends it (%d) and sends no ICMP \"too big\"", lost, n.Size)
	}
	if t, ok := findTunnel(st, indexOf(st, n.Interface)); ok && w > 0 {
		spec := detect.SpecOf(t)
		// The tunnel's packets leaving at what Windows chose (fragmented
		// and dropped beyond it) cap its inner packets at exactly this.
		for _, u := range []tunnel.Underlay{tunnel.IPv4, tunnel.IPv6} {
			if inner, all := spec.LargestInner(w, t.MTU, u); !all && inner == pr.Largest && spec.Need(t.MTU) > w {
				if !scopeOK {
					return PathBroken, SideOurRules, fmt.Sprintf("%s, as when %s's packets leave at what Windows chose (%d): the tunnel scope is not in force", lost, t.Name, w)
				}
				return PathBroken, SideOurRules, fmt.Sprintf("%s, exactly as when %s's packets leave at what Windows chose (%d): the rules in force do not catch its packets (check the [[tunnel]] fwmark or port)", lost, t.Name, w)
			}
		}
	}
	return PathBroken, SideTunnelPeer, fmt.Sprintf("%s although the plan is in force: the tunnel's peer, or the path beyond the outer interface, carries less", lost)
}

func indexOf(st detect.State, name string) int {
	for _, t := range st.Tunnels {
		if t.Name == name {
			return t.Index
		}
	}
	return -1
}

// PathCheck is one host's path check: the size its path must carry under
// the plan in force, what crossed, and the verdict (internal/probe.Verify
// makes it; status, Health and the metrics read it).
type PathCheck struct {
	PathNeed
	// Largest is the largest IP packet that came back with DF: Size when
	// the check passed, -1 when none did (or the check could not run).
	Largest  int         `json:"largest"`
	Verdict  PathVerdict `json:"verdict"`
	Side     PathSide    `json:"side,omitempty"`
	Evidence string      `json:"evidence"`
	Checked  time.Time   `json:"checked"`
}

// OK says whether the path carried what it must.
func (p PathCheck) OK() bool { return p.Verdict == PathOK }

// Broken says whether the path fails while the plan is in force: that is a
// fault of the host, which writing the same plan again would not mend.
func (p PathCheck) Broken() bool { return p.Verdict == PathBroken && p.Side != SideNotFixed }

// String is the check in one line for status, doctor and the log.
func (p PathCheck) String() string {
	if p.Verdict == PathError {
		return fmt.Sprintf("%s: cannot check: %s", p.Host, p.Evidence)
	}
	largest := "none"
	if p.Largest >= 0 {
		largest = fmt.Sprint(p.Largest)
	}
	s := fmt.Sprintf("%s via %s: must carry %d, largest crossed %s: %s", p.Host, p.Interface, p.Size, largest, p.Verdict)
	if p.Side != "" {
		s += " (likely side: " + string(p.Side) + ")"
	}
	return s
}
