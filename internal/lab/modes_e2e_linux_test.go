package lab

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// The proof for mirrored networking: there is no NAT, eth0 mirrors a
// Windows adapter, and that adapter refuses larger frames without an error
// (here: its veth end at the adapter's MTU), while fragments from WSL are
// dropped too. auto must never raise eth0 there: it lowers the tunnel when
// that keeps it at 1280 or more, else clamps the MSS; raise-outer hangs.
func TestMirroredE2E(t *testing.T) {
	t.Parallel()
	// The IPv6 underlay is the tight one: 1320 + 80 is exactly the
	// adapter's 1400, and a 1160-byte segment + 40 + 80 exactly 1280.
	type mirroredCase struct {
		adapter, tunnel int
		v6              bool
		lowered         int // auto's tunnel MTU; 0: auto clamps the MSS instead
		raised          int // raise-outer's eth0
	}
	var cases []mirroredCase
	for _, v6 := range []bool{false, true} {
		cases = append(cases,
			mirroredCase{adapter: 1280, tunnel: 1280, v6: v6, raised: 1360},
			mirroredCase{adapter: 1400, tunnel: 1420, v6: v6, lowered: 1320, raised: 1500})
	}
	for _, tc := range cases {
		v6 := tc.v6
		t.Run(fmt.Sprintf("adapter %d, tunnel %d, %s", tc.adapter, tc.tunnel, underlay(v6)), func(t *testing.T) {
			t.Parallel()
			l := newLab(t, Options{EthMTU: tc.adapter, TunnelMTU: tc.tunnel, IPv6Underlay: v6, Mirrored: true})
			w := newWSLHost(t, l)
			before := routingDump(t, l)

			expectAt(t, "baseline", hangs(l.Download), hangs(l.Upload))
			if n := counter(t, l.FragmentsDropped); n == 0 {
				t.Error("no fragments dropped in the baseline: mirrored mode drops them too")
			} else {
				t.Logf("baseline: the Windows adapter dropped %d fragments from WSL", n)
			}

			r := w.fix(t, labConfig(config.Auto))
			if r.State.Env.NetworkingMode != detect.ModeMirrored || r.Plan.Chosen != config.LowerTunnel {
				t.Fatalf("mode %q, chosen %s (%s); want mirrored, lower-tunnel", r.State.Env.NetworkingMode, r.Plan.Chosen, r.Plan.ChosenWhy)
			}
			wantMTU(t, EthName, l.EthMTU(), tc.adapter)
			if tc.lowered != 0 {
				wantChange(t, r, TunnelName, tc.tunnel, tc.lowered)
				if len(r.Plan.Warnings) != 0 {
					t.Errorf("warnings: %q", r.Plan.Warnings)
				}
			} else {
				wantMTU(t, TunnelName, l.TunnelMTU(), tc.tunnel)
				warnings := strings.Join(r.Plan.Warnings, "\n")
				if r.MSS == nil || r.Plan.MSS == nil || !r.Plan.MSS.Clamp || !strings.Contains(warnings, "clamping the TCP MSS instead") {
					t.Errorf("auto did not clamp the MSS: mss %v, plan:\n%s", r.MSS, r.Plan)
				}
			}
			expectAt(t, "auto", works(l.Download), works(l.Upload))
			w.revert(t)
			wantMTU(t, TunnelName, l.TunnelMTU(), tc.tunnel)
			wantSameRouting(t, l, before)

			r = w.fix(t, labConfig(config.RaiseOuter))
			if !strings.Contains(strings.Join(r.Plan.Warnings, "\n"), "microsoft/WSL#41419") {
				t.Errorf("raise-outer in mirrored mode does not warn what it risks:\n%s", r.Plan)
			}
			wantMTU(t, EthName, l.EthMTU(), tc.raised)
			refused := counter(t, l.AdapterRefused)
			expectAt(t, "raise-outer", hangs(l.Download), hangs(l.Upload))
			if n := counter(t, l.AdapterRefused); n <= refused {
				t.Errorf("AdapterRefused %d → %d: the hang must be the adapter refusing larger frames", refused, n)
			} else {
				t.Logf("raise-outer: the Windows adapter (mtu %d) refused %d larger frames from WSL", tc.adapter, n-refused)
			}
			w.revert(t)
			wantSameRouting(t, l, before)
		})
	}
}

// zerotier-one sends physical UDP payloads of 1432 bytes whatever its
// interface's MTU, with DF clear: through the fragment-dropping NAT they are
// lost until eth0 carries them whole, at 1460 on an IPv4 underlay and 1480
// on IPv6. Lost datagrams are resent for a second before giving up.
func TestZeroTierPayloadsThroughTheNAT(t *testing.T) {
	t.Parallel()
	spec := tunnel.Spec{Kind: tunnel.ZeroTier}
	for _, v6 := range []bool{false, true} {
		t.Run(underlay(v6), func(t *testing.T) {
			t.Parallel()
			u := tunnel.IPv4
			if v6 {
				u = tunnel.IPv6
			}
			need := spec.OuterNeed(0, u)
			l := newLab(t, Options{IPv6Underlay: v6})
			for _, mtu := range []int{1280, 1360, need - 1, need} {
				if err := l.SetEthMTU(mtu); err != nil {
					t.Fatal(err)
				}
				dropped := counter(t, l.FragmentsDropped)
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				r := l.SendUDP(ctx, tunnel.ZeroTierPayload, v6)
				cancel()
				n := counter(t, l.FragmentsDropped) - dropped
				switch {
				case mtu >= need && !r.OK:
					t.Errorf("eth0 %d: want delivered, got %s", mtu, r)
				case mtu < need && !r.Hung:
					t.Errorf("eth0 %d: want lost, got %s", mtu, r)
				case mtu < need && n == 0:
					t.Errorf("eth0 %d: lost, but no fragments were dropped", mtu)
				default:
					t.Logf("eth0 %d: %s (%d fragments dropped)", mtu, r, n)
				}
			}
		})
	}
}
