package fix

import (
	"net/netip"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
)

// The size a path must carry at the bounds: a route mtu only lowers it, the
// clamp only when it is below the tunnel's MTU and the outer interface does
// not carry the tunnel.
func TestPathNeedOfBoundsTable(t *testing.T) {
	eth0 := detect.Link{Name: "eth0", Index: 2, MTU: 1280, Up: true}
	wg0 := detect.Link{Name: "wg0", Index: 3, MTU: 1280, Kind: "wireguard", Up: true}
	st := detect.State{Outer: &eth0, Links: []detect.Link{eth0, wg0}, Tunnels: []detect.Link{wg0}}
	v4 := netip.MustParseAddr("100.64.0.2")
	clamp := func(mss4 int) Plan {
		return Plan{MSS: &MSSPlan{Clamp: true, MSS4: mss4, MSS6: mss4 - 20, State: MSSInSync}}
	}
	for _, tt := range []struct {
		name  string
		st    detect.State
		p     Plan
		r     PathRoute
		size  int
		clamp bool
		why   string
	}{
		{"a route mtu equal to the interface's", st, Plan{},
			PathRoute{Addr: v4, LinkIndex: 2, Interface: "eth0", InterfaceMTU: 1280, RouteMTU: 1280}, 1280, false,
			"outside the tunnels, via eth0: what Windows chose (1280)"},
		{"a route mtu below it", st, Plan{},
			PathRoute{Addr: v4, LinkIndex: 2, Interface: "eth0", InterfaceMTU: 1360, RouteMTU: 1279}, 1279, false,
			"outside the tunnels, via eth0: what Windows chose (1279), kept by the route's mtu"},
		{"sending exactly what Windows chose", st, Plan{WindowsMTU: 1280},
			PathRoute{Addr: v4, LinkIndex: 2, Interface: "eth0", InterfaceMTU: 1280}, 1280, false,
			"outside the tunnels, via eth0: what Windows chose (1280)"},
		{"sending more than Windows chose", st, Plan{WindowsMTU: 1279},
			PathRoute{Addr: v4, LinkIndex: 2, Interface: "eth0", InterfaceMTU: 1280}, 1280, false,
			"outside the tunnels, via eth0: it sends up to 1280, above what Windows chose (1279), so the Windows side must carry it (outer_scope \"\")"},
		{"another interface", st, Plan{},
			PathRoute{Addr: v4, LinkIndex: 9, Interface: "eth1", InterfaceMTU: 1500}, 1500, false,
			"outside the tunnels, via eth1: what it sends (1500)"},
		{"a tunnel route's mtu equal to the tunnel's", st, Plan{},
			PathRoute{Addr: v4, LinkIndex: 3, Interface: "wg0", InterfaceMTU: 1280, RouteMTU: 1280}, 1280, false,
			"through tunnel wg0: its MTU 1280"},
		{"a tunnel route's mtu below the tunnel's", st, Plan{},
			PathRoute{Addr: v4, LinkIndex: 3, Interface: "wg0", InterfaceMTU: 1280, RouteMTU: 1279}, 1279, false,
			"through tunnel wg0: its route's mtu 1279"},
		{"a clamp one byte below the tunnel's MTU", st, clamp(1279 - 40),
			PathRoute{Addr: v4, LinkIndex: 3, Interface: "wg0", InterfaceMTU: 1280}, 1279, true, ""},
		{"a clamp at the tunnel's MTU", st, clamp(1280 - 40),
			PathRoute{Addr: v4, LinkIndex: 3, Interface: "wg0", InterfaceMTU: 1280}, 1280, false, "through tunnel wg0: its MTU 1280"},
		{"an outer interface that carries the tunnel exactly", func() detect.State {
			s := st
			o := eth0
			o.MTU = 1280 + 80
			s.Outer = &o
			return s
		}(), clamp(1000),
			PathRoute{Addr: v4, LinkIndex: 3, Interface: "wg0", InterfaceMTU: 1280}, 1280, false, "through tunnel wg0: its MTU 1280"},
	} {
		n := PathNeedOf(tt.st, tt.p, tt.r)
		if n.Size != tt.size || n.Clamp != tt.clamp || (tt.why != "" && n.Why != tt.why) {
			t.Errorf("%s: size %d clamp %v (%s), want %d %v (%s)", tt.name, n.Size, n.Clamp, n.Why, tt.size, tt.clamp, tt.why)
		}
	}
}

func TestClampPacketTable(t *testing.T) {
	v4, v6, mapped := netip.MustParseAddr("100.64.0.2"), netip.MustParseAddr("fd7a::2"), netip.MustParseAddr("::ffff:100.64.0.2")
	on := &MSSPlan{Clamp: true, MSS4: 1240, MSS6: 1220, State: MSSInSync}
	for _, tt := range []struct {
		name string
		m    *MSSPlan
		addr netip.Addr
		want int
	}{
		{"IPv4", on, v4, 1240 + 20 + 20},
		{"IPv6", on, v6, 1220 + 40 + 20},
		{"IPv4 in IPv6", on, mapped, 1240 + 20 + 20},
		{"no plan", nil, v4, 0},
		{"clamping off", &MSSPlan{MSS4: 1240}, v4, 0},
		{"unavailable", &MSSPlan{Clamp: true, MSS4: 1240, State: MSSUnavailable}, v4, 0},
		{"no IPv6 MSS", &MSSPlan{Clamp: true, MSS4: 1240}, v6, 0},
		{"no IPv4 MSS", &MSSPlan{Clamp: true, MSS6: 1220}, v4, 0},
	} {
		if got := clampPacket(Plan{MSS: tt.m}, tt.addr); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPathCheckStringTable(t *testing.T) {
	need := PathNeed{Host: "h", Interface: "wg0", Size: 1280}
	for _, tt := range []struct {
		c    PathCheck
		want string
	}{
		{PathCheck{PathNeed: need, Largest: 0, Verdict: PathBroken, Side: SideTunnelPeer},
			"h via wg0: must carry 1280, largest crossed 0: broken (likely side: tunnel peer)"},
		{PathCheck{PathNeed: need, Largest: -1, Verdict: PathNoAnswer}, "h via wg0: must carry 1280, largest crossed none: no-answer"},
		{PathCheck{PathNeed: need, Verdict: PathError, Evidence: "no route"}, "h: cannot check: no route"},
	} {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
	if (PathCheck{Verdict: PathBroken, Side: SideNotFixed}).Broken() || !(PathCheck{Verdict: PathBroken, Side: SideWindows}).Broken() {
		t.Error("Broken: a path of a plan not in force is not the host's fault; any other broken one is")
	}
}

// JudgePath at its bounds: an answer with no DF packet across (Largest 0)
// is a broken path, not a silent host; a size equal to what Windows chose
// is not above it.
func TestJudgePathBoundsTable(t *testing.T) {
	eth0 := detect.Link{Name: "eth0", Index: 2, MTU: 1280, Up: true}
	st := detect.State{Outer: &eth0, Links: []detect.Link{eth0}}
	out := func(size, w int) PathNeed {
		return PathNeed{Host: "h", Interface: "eth0", Size: size, WindowsMTU: w}
	}
	for _, tt := range []struct {
		name    string
		p       Plan
		n       PathNeed
		pr      PathProbe
		verdict PathVerdict
		side    PathSide
	}{
		{"crossed", Plan{}, out(1280, 1280), PathProbe{Crossed: true, Answered: true, Largest: 1280}, PathOK, ""},
		{"no answer", Plan{}, out(1280, 1280), PathProbe{Largest: 1000}, PathNoAnswer, ""},
		{"an answer, nothing with DF", Plan{}, out(1280, 1280), PathProbe{Answered: true, Largest: -1}, PathNoAnswer, ""},
		{"an answer, only tiny DF packets", Plan{}, out(1280, 1280), PathProbe{Answered: true, Largest: 0}, PathBroken, SideWindows},
		{"one change pending", Plan{Actions: []Action{{Link: "eth0", From: 1280, To: 1360}}}, out(1280, 1280),
			PathProbe{Answered: true, Largest: 1000}, PathBroken, SideNotFixed},
		{"MSS rules pending", Plan{MSS: &MSSPlan{Clamp: true, State: MSSAbsent}}, out(1280, 1280),
			PathProbe{Answered: true, Largest: 1000}, PathBroken, SideNotFixed},
		{"scope all, above what Windows chose", Plan{Scope: "all"}, out(1281, 1280),
			PathProbe{Answered: true, Largest: 1000}, PathBroken, SideWindows},
		{"scope all, at what Windows chose", Plan{Scope: "all"}, out(1280, 1280),
			PathProbe{Answered: true, Largest: 1000}, PathBroken, SideWindows},
	} {
		v, side, ev := JudgePath(st, tt.p, tt.n, tt.pr)
		if v != tt.verdict || side != tt.side {
			t.Errorf("%s: %s (%s): %s, want %s (%s)", tt.name, v, side, ev, tt.verdict, tt.side)
		}
	}
	// The two Windows-side verdicts differ in their evidence.
	_, _, above := JudgePath(st, Plan{Scope: "all"}, out(1281, 1280), PathProbe{Answered: true, Largest: 1000})
	_, _, at := JudgePath(st, Plan{Scope: "all"}, out(1280, 1280), PathProbe{Answered: true, Largest: 1000})
	if above == at || at != "packets up to 1000 bytes cross, 1280-byte ones are lost: the Windows side carries less than WSL sends it (1280) and sends no ICMP \"too big\"" {
		t.Errorf("evidence above: %q\nat: %q", above, at)
	}
}

// Without knowing what Windows chose, a broken tunnel path cannot be
// matched to our rules: the tunnel's peer is the likely side.
func TestJudgePathWithoutWhatWindowsChose(t *testing.T) {
	eth0 := detect.Link{Name: "eth0", Index: 2, MTU: 1280, Up: true}
	wg0 := detect.Link{Name: "wg0", Index: 3, MTU: 1280, Kind: "wireguard", Up: true}
	st := detect.State{Outer: &eth0, Links: []detect.Link{eth0, wg0}, Tunnels: []detect.Link{wg0}}
	n := PathNeed{Host: "peer", Interface: "wg0", Tunnel: true, Size: 1280}
	if v, side, ev := JudgePath(st, Plan{}, n, PathProbe{Answered: true, Largest: 0}); v != PathBroken || side != SideTunnelPeer {
		t.Errorf("%s (%s): %s", v, side, ev)
	}
}
