package probe_test

import (
	"context"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/probe"
	"github.com/wslmtu/wslmtu/internal/testenv/labtest"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// TestE2ELab is the acceptance test of `wslmtu probe` on the WSL2 model:
// WireGuard (wireguard-go) inside "WSL", its outer packets crossing a "Hyper-V"
// NAT that drops fragments. With eth0 1280 and tailscale0 1280 the probe to
// the peer's tunnel address must find 1188 bytes of payload (a 1216-byte
// packet, WireGuard's padding) and the fragment verdict, in under 3 s; with
// eth0 raised to 1360 the full tunnel MTU must cross.
func TestE2ELab(t *testing.T) {
	netnstest.RequireRoot(t, "builds the namespace lab")
	for _, tc := range []struct {
		name    string
		ethMTU  int
		payload int
		verdict probe.Verdict
	}{
		{"broken-eth0-1280", 1280, 1188, probe.VerdictFragmentsDropped},
		{"fixed-eth0-1360", 1360, 1280 - 28, probe.VerdictOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := labtest.New(t, lab.Options{EthMTU: tc.ethMTU, TunnelMTU: 1280})
			for _, v6 := range []bool{false, true} {
				peer := l.PeerTunnelIP(v6)
				var res *probe.Result
				start := time.Now()
				err := l.DoWSL(func() (err error) {
					res, err = probe.Run(context.Background(), peer.String(), config.Default(), probe.Options{Config: probe.Config{Timeout: time.Second}})
					return err
				})
				took := time.Since(start)
				if err != nil {
					t.Fatalf("probe %s: %v", peer, err)
				}
				t.Logf("probe %s in %s (%d rounds):\n%s", peer, took.Round(time.Millisecond), res.Rounds, res)
				if res.Interface != lab.TunnelName || !res.Tunnel || res.InterfaceMTU != 1280 {
					t.Errorf("route via %s tunnel=%v mtu %d, want %s tunnel 1280", res.Interface, res.Tunnel, res.InterfaceMTU, lab.TunnelName)
				}
				if res.Verdict != tc.verdict {
					t.Errorf("%s: verdict %s, want %s: %s", peer, res.Verdict, tc.verdict, res.Message)
				}
				if res.TunnelKind != tunnel.WireGuard || res.Outer != lab.EthName || res.OuterMTU != tc.ethMTU {
					t.Errorf("tunnel kind %q beneath %s %d, want wireguard beneath %s %d", res.TunnelKind, res.Outer, res.OuterMTU, lab.EthName, tc.ethMTU)
				}
				// The lab's underlay is IPv4, whichever family the probe uses inside.
				if wantWhy := "1216 = floor16(1280 − 60): WireGuard over an IPv4 underlay on eth0 (MTU 1280)"; tc.verdict == probe.VerdictFragmentsDropped && res.LimitWhy != wantWhy {
					t.Errorf("%s: limit explained as %q, want %q", peer, res.LimitWhy, wantWhy)
				}
				if v6 {
					// The padded inner limit is the same 1216 bytes; IPv6 headers are 20 more.
					if tc.verdict == probe.VerdictFragmentsDropped && res.MaxDFPacket != 1216 {
						t.Errorf("%s: largest DF packet %d, want 1216", peer, res.MaxDFPacket)
					}
					continue
				}
				if res.MaxDFPayload != tc.payload || !res.Exact {
					t.Errorf("%s: payload %d (packet %d) exact=%v, want %d", peer, res.MaxDFPayload, res.MaxDFPacket, res.Exact, tc.payload)
				}
				if tc.verdict == probe.VerdictFragmentsDropped {
					if res.MaxDFPacket != 1216 || res.FragmentsPassed {
						t.Errorf("%s: packet %d fragments=%v, want 1216 and lost", peer, res.MaxDFPacket, res.FragmentsPassed)
					}
					if took > 3*time.Second {
						t.Errorf("%s: took %s, acceptance is under 3s", peer, took)
					}
				}
			}
		})
	}
}
