package fix

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

var (
	peerAddr = netip.MustParseAddr("100.64.0.2")
	vpnAddr  = netip.MustParseAddr("10.99.0.2")
)

// routeVia is the route the kernel would give a host through the named
// link, with the mtu of the main table's default route when outside.
func routeVia(t *testing.T, st detect.State, name string, addr netip.Addr) PathRoute {
	t.Helper()
	for _, l := range st.Links {
		if l.Name != name {
			continue
		}
		r := PathRoute{Host: addr.String(), Addr: addr, LinkIndex: l.Index, Interface: l.Name, InterfaceMTU: l.MTU}
		for _, d := range st.DefaultRoutes(l.Index) {
			if d.Table == detect.MainTable || d.Table == 0 {
				r.RouteMTU = d.MTU
			}
		}
		return r
	}
	t.Fatalf("no link %s", name)
	return PathRoute{}
}

// fixed is the state and the plan after the fix was applied under cfg.
func fixed(t *testing.T, k *fakekernel.Kernel, cfg config.Config) (detect.State, Plan) {
	w := newWorld(t, k, "nat", cfg)
	w.apply()
	return observe(t, k, "nat", cfg), w.plan()
}

// The size each path must carry, from the plan in force.
func TestPathNeedOf(t *testing.T) {
	clamp := scopeCfg(config.Auto, config.ScopeTunnel)
	clamp.MSSClamp = true
	tests := []struct {
		name     string
		k        *fakekernel.Kernel
		cfg      config.Config
		link     string
		addr     netip.Addr
		size     int
		tunnel   bool
		clamp    bool
		why      string
		unfixed  bool
		wantWinW int
	}{
		{"through the tunnel: its MTU", fakekernel.NewWSL(1280, 1280), config.Default(), "tailscale0", peerAddr, 1280, true, false, "through tunnel tailscale0: its MTU 1280", false, 1280},
		{"outside, scope tunnel: what Windows chose, by the route mtu", fakekernel.NewWSL(1280, 1280), config.Default(), "eth0", vpnAddr, 1280, false, false, "what Windows chose (1280), kept by the route's mtu", false, 1280},
		{"outside, scope all: what eth0 now sends", fakekernel.NewWSL(1280, 1280), scopeCfg(config.RaiseOuter, config.ScopeAll), "eth0", vpnAddr, 1360, false, false, "above what Windows chose (1280)", false, 1280},
		{"lower-tunnel: the lowered MTU", fakekernel.NewWSL(1400, 1400), scopeCfg(config.LowerTunnel, config.ScopeTunnel), "tailscale0", peerAddr, 1320, true, false, "its MTU 1320", false, 1400},
		{"outside, nothing raised: eth0's MTU", fakekernel.NewWSL(1400, 1280), config.Default(), "eth0", vpnAddr, 1400, false, false, "what Windows chose (1400)", false, 1400},
		{"before the fix: the tunnel's MTU as it is", fakekernel.NewWSL(1280, 1280), config.Default(), "tailscale0", peerAddr, 1280, true, false, "its MTU 1280", true, 1280},
		{"MSS clamp on top of a raise: the full MTU still", fakekernel.NewWSL(1280, 1280), clamp, "tailscale0", peerAddr, 1280, true, false, "its MTU 1280", false, 1280},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st detect.State
			var p Plan
			if tt.unfixed {
				w := newWorld(t, tt.k, "nat", tt.cfg)
				st, p = observe(t, tt.k, "nat", tt.cfg), w.plan()
			} else {
				st, p = fixed(t, tt.k, tt.cfg)
			}
			n := PathNeedOf(st, p, routeVia(t, st, tt.link, tt.addr))
			if n.Size != tt.size || n.Tunnel != tt.tunnel || n.Clamp != tt.clamp || !strings.Contains(n.Why, tt.why) || n.WindowsMTU != tt.wantWinW {
				t.Errorf("need %+v\nwant size %d tunnel %v clamp %v W %d, why containing %q", n, tt.size, tt.tunnel, tt.clamp, tt.wantWinW, tt.why)
			}
		})
	}
}

// Under mirrored mode's MSS clamp (the tunnel would go below 1280), the
// path must carry what the clamp assumes, not the tunnel's MTU.
func TestPathNeedUnderTheClamp(t *testing.T) {
	st := detect.State{
		Outer:   &detect.Link{Name: "eth0", Index: 2, MTU: 1280},
		Tunnels: []detect.Link{{Name: "wg0", Index: 3, MTU: 1280}},
	}
	p := Plan{Chosen: config.LowerTunnel, MSS: &MSSPlan{Clamp: true, MSS4: 1200, MSS6: 1180, State: MSSInSync}}
	n := PathNeedOf(st, p, PathRoute{Host: "peer", Addr: peerAddr, LinkIndex: 3, Interface: "wg0", InterfaceMTU: 1280})
	if n.Size != 1240 || !n.Clamp || !strings.Contains(n.Why, "MSS clamp") {
		t.Errorf("IPv4: %+v, want 1240 under the clamp", n)
	}
	n = PathNeedOf(st, p, PathRoute{Host: "peer", Addr: netip.MustParseAddr("fd7a::2"), LinkIndex: 3, Interface: "wg0", InterfaceMTU: 1280})
	if n.Size != 1240 || !n.Clamp {
		t.Errorf("IPv6: %+v, want 1180+60 under the clamp", n)
	}
	p.MSS.State = MSSUnavailable
	if n := PathNeedOf(st, p, PathRoute{Addr: peerAddr, LinkIndex: 3, Interface: "wg0", InterfaceMTU: 1280}); n.Size != 1280 || n.Clamp {
		t.Errorf("a clamp that cannot be applied promises nothing: %+v", n)
	}
}

// The verdict and the likely side, from the evidence.
func TestJudgePath(t *testing.T) {
	def := config.Default()
	all := scopeCfg(config.RaiseOuter, config.ScopeAll)
	tests := []struct {
		name     string
		cfg      config.Config
		unfixed  bool
		link     string
		probe    PathProbe
		verdict  PathVerdict
		side     PathSide
		evidence string
	}{
		{"crossed", def, false, "tailscale0", PathProbe{Crossed: true, Answered: true, Largest: 1280}, PathOK, "", "1280-byte DF packets cross"},
		{"no answer", def, false, "tailscale0", PathProbe{Largest: -1}, PathNoAnswer, "", "answers no echo"},
		{"before the fix", def, true, "tailscale0", PathProbe{Answered: true, Largest: 1216}, PathBroken, SideNotFixed, "not in force"},
		{"scope all, VPN host: Windows", all, false, "eth0", PathProbe{Answered: true, Largest: 1280}, PathBroken, SideWindows, `outer_scope "all"`},
		{"scope tunnel, VPN host at W fails: Windows", def, false, "eth0", PathProbe{Answered: true, Largest: 1200}, PathBroken, SideWindows, "Windows side carries less"},
		{"tunnel capped exactly as over W: our rules", def, false, "tailscale0", PathProbe{Answered: true, Largest: 1216}, PathBroken, SideOurRules, "do not catch its packets"},
		{"tunnel capped elsewhere: the peer", def, false, "tailscale0", PathProbe{Answered: true, Largest: 1100}, PathBroken, SideTunnelPeer, "although the plan is in force"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := fakekernel.NewWSL(1280, 1280)
			var st detect.State
			var p Plan
			if tt.unfixed {
				st, p = observe(t, k, "nat", tt.cfg), newWorld(t, k, "nat", tt.cfg).plan()
			} else {
				st, p = fixed(t, k, tt.cfg)
			}
			n := PathNeedOf(st, p, routeVia(t, st, tt.link, peerAddr))
			v, side, ev := JudgePath(st, p, n, tt.probe)
			if v != tt.verdict || side != tt.side || !strings.Contains(ev, tt.evidence) {
				t.Errorf("got %s, %q: %s\nwant %s, %q, evidence containing %q", v, side, ev, tt.verdict, tt.side, tt.evidence)
			}
		})
	}
}

// A path broken while the plan is in force makes the host unhealthy with
// the evidence and the side; one broken only because the fix is not in
// force yet, or a host that does not answer, adds nothing of its own.
func TestHealthOfPaths(t *testing.T) {
	st, p := fixed(t, fakekernel.NewWSL(1280, 1280), config.Default())
	r := Report{State: st, Plan: p}
	if !r.Health().Healthy {
		t.Fatalf("fixed host: %s", r.Health())
	}
	r.Paths = []PathCheck{
		{PathNeed: PathNeed{Host: "a"}, Verdict: PathOK},
		{PathNeed: PathNeed{Host: "b"}, Verdict: PathNoAnswer},
		{PathNeed: PathNeed{Host: "c"}, Verdict: PathBroken, Side: SideNotFixed},
	}
	if h := r.Health(); !h.Healthy {
		t.Errorf("no path broken under the plan in force: %s", h)
	}
	r.Paths = append(r.Paths, PathCheck{PathNeed: PathNeed{Host: "100.64.0.2"}, Verdict: PathBroken, Side: SideTunnelPeer, Evidence: "packets up to 1216 bytes cross"})
	h := r.Health()
	if h.Healthy || !strings.Contains(h.String(), "the path to 100.64.0.2 is broken (likely side: tunnel peer): packets up to 1216 bytes cross") {
		t.Errorf("broken path: %s", h)
	}
}
