package lab

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
)

// These tests drive the real fix code (detect → plan → apply → revert) against
// the lab's WSL namespace: the same calls `wslmtu fix` and `wslmtu revert`
// make, with only the netlink handle pointed at the lab. Checks that must
// hang cost CheckTimeout each, so they run concurrently and the tests run
// in parallel (every lab has its own namespaces).

// wslHost is the fix.Host of the lab's WSL namespace, with its own state
// directory. Its calls run inside the namespace (DoWSL) because the MSS part
// reads iptables in the calling thread's namespace, and the host's firewall
// must never be read or written here.
type wslHost struct {
	l *Lab
	h fix.Host
}

func newWSLHost(t *testing.T, l *Lab) *wslHost {
	return &wslHost{l: l, h: fix.HostAt(l.WSLNetlink(), l.Sources(), t.TempDir())}
}

// labConfig is the default config on a host that is not WSL.
func labConfig(s config.Strategy) config.Config {
	cfg := config.Default()
	cfg.AssumeWSL = true
	cfg.MTUStrategy = s
	return cfg
}

func (w *wslHost) fix(t *testing.T, cfg config.Config) fix.Report {
	t.Helper()
	var r fix.Report
	err := w.l.DoWSL(func() (err error) {
		r, err = w.h.Fix(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("Fix(%s): %v\nplan:\n%s", cfg.MTUStrategy, err, r.Plan)
	}
	for _, c := range r.Changes {
		t.Logf("fix: %s", c)
	}
	return r
}

func (w *wslHost) revert(t *testing.T) []fix.Reverted {
	t.Helper()
	var done []fix.Reverted
	err := w.l.DoWSL(func() (err error) {
		done, _, err = w.h.Revert()
		return err
	})
	if err != nil {
		t.Fatalf("Revert: %v", err)
	}
	for _, r := range done {
		t.Logf("revert: %s", r)
	}
	return done
}

func wantMTU(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s MTU = %d, want %d", what, got, want)
	}
}

// wantChange asserts that the report holds exactly one written change of
// link from → to, printed in the words `wslmtu fix` uses.
func wantChange(t *testing.T, r fix.Report, link string, from, to int) {
	t.Helper()
	var mtu []fix.Change
	for _, c := range r.Changes {
		if c.Link != "" {
			mtu = append(mtu, c)
		}
	}
	if len(mtu) != 1 {
		t.Fatalf("changes = %v, want one mtu change, for %s", r.Changes, link)
	}
	c := mtu[0]
	prefix := fmt.Sprintf("%s: mtu %d → %d (", link, from, to)
	if !c.Wrote || !strings.HasPrefix(c.String(), prefix) {
		t.Errorf("change = %q (wrote %v), want it written and starting %q", c, c.Wrote, prefix)
	}
}

// The whole story of the default remedy on the broken setup (eth0 1280,
// tailscale0 1280): the transfers hang, raise-outer makes eth0 1360 and both
// directions work on either underlay, revert puts 1280 back and the hang
// with it.
func TestFixRaiseOuterE2E(t *testing.T) {
	t.Parallel()
	for _, v6 := range []bool{false, true} {
		t.Run(underlay(v6), func(t *testing.T) {
			t.Parallel()
			l := newLab(t, Options{EthMTU: 1280, TunnelMTU: 1280, IPv6Underlay: v6})
			w := newWSLHost(t, l)

			expectAt(t, "baseline", hangs(l.Download), hangs(l.Upload))
			dropped, err := l.FragmentsDropped()
			if err != nil || dropped == 0 {
				t.Errorf("FragmentsDropped after the baseline = %d, %v; want > 0: the hang must be the fragment black hole", dropped, err)
			}

			r := w.fix(t, labConfig(config.RaiseOuter))
			// The baseline's hung connections keep retransmitting, and one
			// may leave while the fix is being applied: count from after it.
			if dropped, err = l.FragmentsDropped(); err != nil {
				t.Fatal(err)
			}
			wantChange(t, r, EthName, 1280, 1360)
			wantMTU(t, EthName, l.EthMTU(), 1360)
			wantMTU(t, TunnelName, l.TunnelMTU(), 1280)
			expectAt(t, "raise-outer",
				works(l.Download),
				works(l.Upload),
				works(ping(l, 1252, true, false)), // fills the 1280 tunnel
				works(ping(l, 1232, true, true)),
			)
			if after, err := l.FragmentsDropped(); err != nil || after != dropped {
				t.Errorf("FragmentsDropped after the fix = %d, %v; want still %d: nothing may fragment now", after, err, dropped)
			}

			// A second fix is the repair path: it must find nothing to write.
			if again := w.fix(t, labConfig(config.RaiseOuter)); len(again.Changes) != 0 || !again.Plan.Empty() {
				t.Errorf("second Fix: changes %v, plan %q; want nothing to do", again.Changes, again.Plan)
			}

			done := w.revert(t)
			if len(done) == 0 || done[0].Link != EthName || done[0].To != 1280 {
				t.Errorf("Revert = %v, want eth0 back to 1280 first", done)
			}
			wantMTU(t, EthName, l.EthMTU(), 1280)
			expectAt(t, "reverted", hangs(l.Download))
		})
	}
}

// lower-tunnel fits tailscale0 into eth0 instead: TCP and ICMP both work, at
// the price of tailscale0's IPv6 address (the plan warns). Revert sets 1280
// back, which brings the hang back but not the address.
func TestFixLowerTunnelE2E(t *testing.T) {
	t.Parallel()
	l := newLab(t, Options{EthMTU: 1280, TunnelMTU: 1280})
	w := newWSLHost(t, l)

	r := w.fix(t, labConfig(config.LowerTunnel))
	wantChange(t, r, TunnelName, 1280, 1200)
	if !strings.Contains(r.Plan.String(), "loses its IPv6 addresses") {
		t.Errorf("plan does not warn about the lost IPv6 addresses:\n%s", r.Plan)
	}
	wantMTU(t, EthName, l.EthMTU(), 1280)
	wantMTU(t, TunnelName, l.TunnelMTU(), 1200)
	expectAt(t, "lower-tunnel",
		works(l.Download),
		works(l.Upload),
		works(ping(l, 1172, true, false)), // fills the 1200 tunnel
	)

	done := w.revert(t)
	if len(done) != 1 || done[0].Link != TunnelName || done[0].To != 1280 {
		t.Errorf("Revert = %v, want tailscale0 back to 1280", done)
	}
	wantMTU(t, TunnelName, l.TunnelMTU(), 1280)
	expectAt(t, "reverted", hangs(l.Download))
	// Not a hang: the kernel has no IPv6 route into the tunnel any more.
	if res := l.Ping(t.Context(), 56, false, true); res.OK || res.Hung {
		t.Errorf("IPv6 ping over the reverted tunnel: want a local error (address lost), got %s", res)
	}
}
