package lab_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/lab"
)

// These tests drive the real fix code (detect → plan → apply → revert) against
// the lab's WSL namespace: the same calls `wslmtu fix` and `wslmtu revert`
// make, with only the netlink handle pointed at the lab. Checks that must
// hang cost lab.CheckTimeout each, so they run concurrently and the tests run
// in parallel (every lab has its own namespaces).

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
}

func newLab(t *testing.T, opts lab.Options) *lab.Lab {
	t.Helper()
	needRoot(t)
	l, err := lab.New(opts)
	if err != nil {
		t.Fatalf("lab.New(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab Close: %v", err)
		}
	})
	return l
}

// wslHost is the fix.Host of the lab's WSL namespace, with its own state
// directory. Its calls run inside the namespace (DoWSL) because the MSS part
// reads iptables in the calling thread's namespace, and the host's firewall
// must never be read or written here.
type wslHost struct {
	l *lab.Lab
	h fix.Host
}

func newWSLHost(t *testing.T, l *lab.Lab) *wslHost {
	return &wslHost{l: l, h: fix.HostAt(l.WSLNetlink(), detect.HostSources(), t.TempDir())}
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
		done, err = w.h.Revert()
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

// expectation pairs a check with whether it must succeed (or hang).
type expectation struct {
	run  func(context.Context) lab.Result
	want bool // true: OK; false: Hung
}

func works(f func(context.Context) lab.Result) expectation { return expectation{f, true} }
func hangs(f func(context.Context) lab.Result) expectation { return expectation{f, false} }

func ping(l *lab.Lab, payload int, df, v6 bool) func(context.Context) lab.Result {
	return func(ctx context.Context) lab.Result { return l.Ping(ctx, payload, df, v6) }
}

// expect runs the checks concurrently and asserts each outcome.
func expect(t *testing.T, stage string, checks ...expectation) {
	t.Helper()
	results := make([]lab.Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.run(t.Context())
		}()
	}
	wg.Wait()
	for i, r := range results {
		switch {
		case checks[i].want && !r.OK:
			t.Errorf("%s: want ok, got %s", stage, r)
		case !checks[i].want && !r.Hung:
			t.Errorf("%s: want hung, got %s", stage, r)
		default:
			t.Logf("%s: %s", stage, r)
		}
	}
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
	if len(r.Changes) != 1 {
		t.Fatalf("changes = %v, want one for %s", r.Changes, link)
	}
	c := r.Changes[0]
	prefix := fmt.Sprintf("%s: mtu %d → %d (", link, from, to)
	if !c.Wrote || !strings.HasPrefix(c.String(), prefix) {
		t.Errorf("change = %q (wrote %v), want it written and starting %q", c, c.Wrote, prefix)
	}
}

func underlay(v6 bool) string {
	if v6 {
		return "ipv6-underlay"
	}
	return "ipv4-underlay"
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
			l := newLab(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280, IPv6Underlay: v6})
			w := newWSLHost(t, l)

			expect(t, "baseline", hangs(l.Download), hangs(l.Upload))
			dropped, err := l.FragmentsDropped()
			if err != nil || dropped == 0 {
				t.Errorf("FragmentsDropped after the baseline = %d, %v; want > 0: the hang must be the fragment black hole", dropped, err)
			}

			r := w.fix(t, labConfig(config.RaiseOuter))
			wantChange(t, r, lab.EthName, 1280, 1360)
			wantMTU(t, lab.EthName, l.EthMTU(), 1360)
			wantMTU(t, lab.TunnelName, l.TunnelMTU(), 1280)
			expect(t, "raise-outer",
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
			if len(done) != 1 || done[0].Link != lab.EthName || done[0].To != 1280 {
				t.Errorf("Revert = %v, want eth0 back to 1280", done)
			}
			wantMTU(t, lab.EthName, l.EthMTU(), 1280)
			expect(t, "reverted", hangs(l.Download))
		})
	}
}

// lower-tunnel fits tailscale0 into eth0 instead: TCP and ICMP both work, at
// the price of tailscale0's IPv6 address (the plan warns). Revert sets 1280
// back, which brings the hang back but not the address.
func TestFixLowerTunnelE2E(t *testing.T) {
	t.Parallel()
	l := newLab(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280})
	w := newWSLHost(t, l)

	r := w.fix(t, labConfig(config.LowerTunnel))
	wantChange(t, r, lab.TunnelName, 1280, 1200)
	if !strings.Contains(r.Plan.String(), "loses its IPv6 addresses") {
		t.Errorf("plan does not warn about the lost IPv6 addresses:\n%s", r.Plan)
	}
	wantMTU(t, lab.EthName, l.EthMTU(), 1280)
	wantMTU(t, lab.TunnelName, l.TunnelMTU(), 1200)
	expect(t, "lower-tunnel",
		works(l.Download),
		works(l.Upload),
		works(ping(l, 1172, true, false)), // fills the 1200 tunnel
	)

	done := w.revert(t)
	if len(done) != 1 || done[0].Link != lab.TunnelName || done[0].To != 1280 {
		t.Errorf("Revert = %v, want tailscale0 back to 1280", done)
	}
	wantMTU(t, lab.TunnelName, l.TunnelMTU(), 1280)
	expect(t, "reverted", hangs(l.Download))
	// Not a hang: the kernel has no IPv6 route into the tunnel any more.
	if res := l.Ping(t.Context(), 56, false, true); res.OK || res.Hung {
		t.Errorf("IPv6 ping over the reverted tunnel: want a local error (address lost), got %s", res)
	}
}
