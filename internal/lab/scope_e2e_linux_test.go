package lab

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
)

// The tunnel scope's proof: a Windows VPN adapter at 1280 between WSL and a
// corporate server, which never reports a packet too big. Raising eth0 for
// everything (outer_scope = "all") fixes the tunnel and breaks the VPN;
// the tunnel scope fixes the tunnel and keeps the VPN working; revert
// leaves the rules and routes byte-identical.

func scopeConfig(s config.Strategy, scope config.Scope) config.Config {
	cfg := labConfig(s)
	cfg.OuterScope = scope
	return cfg
}

// corporateUploads are the uploads to the server behind the VPN: IPv4,
// and IPv6 too where eth0 has it.
func corporateUploads(l *Lab, v6 bool, want func(func(context.Context) Result) expectation) []expectation {
	out := []expectation{want(func(ctx context.Context) Result { return l.CorporateUpload(ctx, false) })}
	if v6 {
		out = append(out, want(func(ctx context.Context) Result { return l.CorporateUpload(ctx, true) }))
	}
	return out
}

func routingDump(t *testing.T, l *Lab) string {
	t.Helper()
	d, err := l.RoutingDump()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wantSameRouting asserts that ip rule / ip route print exactly what they
// printed before.
func wantSameRouting(t *testing.T, l *Lab, before string) {
	t.Helper()
	if after := routingDump(t, l); after != before {
		t.Errorf("after revert:\n%s\nbefore:\n%s", after, before)
	}
}

func counter(t *testing.T, f func() (int, error)) int {
	t.Helper()
	n, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// outer_scope = "all" raises eth0 for every packet: the tunnel works, and the upload to
// the server behind the VPN, which worked before, hangs, because Windows
// drops what is larger than its VPN adapter and says nothing.
func TestOuterScopeAllBreaksTheCorporateVPN(t *testing.T) {
	t.Parallel()
	for _, v6 := range []bool{false, true} {
		t.Run(underlay(v6), func(t *testing.T) {
			t.Parallel()
			l := newLab(t, Options{EthMTU: 1280, TunnelMTU: 1280, IPv6Underlay: v6, CorporateVPN: true})
			w := newWSLHost(t, l)
			before := routingDump(t, l)

			expectAt(t, "baseline", append(corporateUploads(l, v6, works), hangs(l.Download), hangs(l.Upload))...)
			if n := counter(t, l.FragmentsDropped); n == 0 {
				t.Error("no fragments dropped in the baseline: the tunnel's hang must be the fragment black hole")
			}

			r := w.fix(t, scopeConfig(config.RaiseOuter, config.ScopeAll))
			wantChange(t, r, EthName, 1280, 1360)
			if len(r.Plan.Routes)+len(r.Plan.Rules) != 0 {
				t.Errorf("outer_scope all changed routes or rules:\n%s", r.Plan)
			}
			icmp := counter(t, l.ICMPDropped)
			expectAt(t, "outer_scope all", append(corporateUploads(l, v6, hangs), works(l.Download), works(l.Upload))...)
			if n := counter(t, l.ICMPDropped); n <= icmp {
				t.Errorf("ICMPDropped %d → %d: the corporate hang must be a packet too big for the VPN adapter, never reported", icmp, n)
			} else {
				t.Logf("the VPN adapter kept %d fragmentation-needed/packet-too-big messages from WSL", n-icmp)
			}

			w.revert(t)
			wantSameRouting(t, l, before)
		})
	}
}

// outer_scope = "tunnel" (the default) with two tunnels recognised without
// configuration: tailscale0 by tailscaled's mark, and a wireguard-go device
// with no mark by the listen port wgctrl reads from its UAPI socket. Both
// tunnels carry 55 kB both ways, the corporate upload keeps working, and
// revert leaves ip rule and ip route byte-identical.
func TestOuterScopeTunnelKeepsTheCorporateVPN(t *testing.T) {
	t.Parallel()
	for _, v6 := range []bool{false, true} {
		t.Run(underlay(v6), func(t *testing.T) {
			t.Parallel()
			l := newLab(t, Options{EthMTU: 1280, TunnelMTU: 1280, IPv6Underlay: v6, CorporateVPN: true, PortTunnel: true})
			w := newWSLHost(t, l)
			pt := l.PortTunnel()
			before := routingDump(t, l)

			// The baseline (both tunnels hang, the corporate upload works)
			// is TestOuterScopeAllBreaksTheCorporateVPN's.
			r := w.fix(t, labConfig(config.Auto)) // the defaults: auto, outer_scope tunnel
			if r.Plan.Chosen != config.RaiseOuter || r.Plan.Scope != config.ScopeTunnel || r.Plan.WindowsMTU != 1280 {
				t.Errorf("plan chose %s, scope %s, windows mtu %d; want raise-outer, tunnel, 1280", r.Plan.Chosen, r.Plan.Scope, r.Plan.WindowsMTU)
			}
			if len(r.Plan.Warnings) != 0 {
				t.Errorf("warnings: %q", r.Plan.Warnings)
			}
			wantIdentified(t, r.State, map[string]string{
				TunnelName: "tailscaled's rules at 5210–5250 use it",
				pt.Name():  fmt.Sprintf("wgctrl: the device has no fwmark and listens on udp port %d", PortTunnelPort),
			})
			who := fmt.Sprintf("only %s and %s's own packets use 1360", TunnelName, pt.Name())
			want := []string{
				"ip rule 5190: from all fwmark 0x80000/0xff0000 lookup main suppress_prefixlength 0: add",
				"ip rule 5200: from all fwmark 0x80000/0xff0000 lookup 5200: add",
				fmt.Sprintf("ip rule 5190: from all ipproto udp sport %d lookup main suppress_prefixlength 0: add", PortTunnelPort),
				fmt.Sprintf("ip rule 5200: from all ipproto udp sport %d lookup 5200: add", PortTunnelPort),
				"route default via 172.24.0.1 dev eth0 table 5200: add",
				"route default via 172.24.0.1 dev eth0: mtu 1280 (what Windows chose; " + who + ")",
				"eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)",
			}
			if v6 {
				want = append(want,
					"ip -6 rule 5190: from all fwmark 0x80000/0xff0000 lookup main suppress_prefixlength 0: add",
					fmt.Sprintf("ip -6 rule 5200: from all ipproto udp sport %d lookup 5200: add", PortTunnelPort),
					"route default via fd00:5:1::1 dev eth0 table 5200 metric 1024: add",
					"route default via fd00:5:1::1 dev eth0 metric 1024: mtu 1280 (what Windows chose; "+who+")")
			}
			wantLines(t, changeLines(r), want)
			wantMTU(t, EthName, l.EthMTU(), 1360)

			dropped := counter(t, l.FragmentsDropped)
			icmp := counter(t, l.ICMPDropped)
			expectAt(t, "outer_scope tunnel", append(corporateUploads(l, v6, works),
				works(l.Download), works(l.Upload), works(pt.Download), works(pt.Upload),
				works(ping(l, 1252, true, false)), // fills the 1280 tunnel
			)...)
			if n := counter(t, l.FragmentsDropped); n != dropped {
				t.Errorf("FragmentsDropped %d → %d: nothing may fragment with the scope in place", dropped, n)
			}
			if n := counter(t, l.ICMPDropped); n != icmp {
				t.Errorf("ICMPDropped %d → %d: nothing may be too big for the VPN adapter", icmp, n)
			}

			if again := w.fix(t, labConfig(config.Auto)); len(again.Changes) != 0 || !again.Plan.Empty() {
				t.Errorf("second Fix: changes %v, plan %q; want nothing to do", again.Changes, again.Plan)
			}
			w.revert(t)
			wantMTU(t, EthName, l.EthMTU(), 1280)
			wantSameRouting(t, l, before)
		})
	}
}

// wantIdentified asserts how each tunnel's packets were recognised.
func wantIdentified(t *testing.T, st detect.State, want map[string]string) {
	t.Helper()
	for name, by := range want {
		i := slices.IndexFunc(st.Tunnels, func(l detect.Link) bool { return l.Name == name })
		switch {
		case i < 0 || st.Tunnels[i].Tunnel == nil:
			t.Errorf("%s: not observed as a tunnel", name)
		case st.Tunnels[i].Tunnel.IdentifiedBy != by:
			l := st.Tunnels[i]
			t.Errorf("%s: identified by %q (unidentified: %q), want %q", name, l.Tunnel.IdentifiedBy, l.Tunnel.Unidentified, by)
		}
	}
}

func changeLines(r fix.Report) []string {
	var out []string
	for _, c := range r.Changes {
		out = append(out, c.String())
	}
	return out
}

// wantLines asserts that each wanted text starts one of the lines.
func wantLines(t *testing.T, lines, want []string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w)
		}
		if !found {
			t.Errorf("no line starts %q in:\n%s", w, strings.Join(lines, "\n"))
		}
	}
}
