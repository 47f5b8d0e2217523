package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// These tests build real labs: namespaces, veths, wireguard-go nodes. Every
// lab has unique namespace names, so the tests run in parallel; a check that
// is expected to hang costs CheckTimeout, so such checks run concurrently.

func newLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	netnstest.RequireRoot(t, "creates network namespaces")
	start := time.Now()
	l, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Logf("lab %s up in %v", strings.TrimSuffix(l.WSLNetNS(), "wsl"), time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		start := time.Now()
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		t.Logf("lab closed in %v", time.Since(start).Round(time.Millisecond))
	})
	return l
}

// expectation pairs a check with whether it must succeed (or hang).
type expectation struct {
	run  func(context.Context) Result
	want bool // true: OK; false: Hung
}

func works(f func(context.Context) Result) expectation { return expectation{f, true} }
func hangs(f func(context.Context) Result) expectation { return expectation{f, false} }

func ping(l *Lab, payload int, df, v6 bool) func(context.Context) Result {
	return func(ctx context.Context) Result { return l.Ping(ctx, payload, df, v6) }
}

// expect runs the checks concurrently and asserts each outcome.
func expect(t *testing.T, checks ...expectation) {
	t.Helper()
	expectAt(t, "", checks...)
}

// hangAfter is how long a check that must hang is given: a working
// transfer here takes milliseconds, and the drop counters each test reads
// say why it hung, so half of CheckTimeout is plenty, and go test, which
// runs only GOMAXPROCS tests at once, waits less for each black hole.
const hangAfter = CheckTimeout / 2

// expectAt is expect with the stage of a longer story in every message.
func expectAt(t *testing.T, stage string, checks ...expectation) {
	t.Helper()
	if stage != "" {
		stage += ": "
	}
	runs := make([]func(context.Context) Result, len(checks))
	for i, c := range checks {
		runs[i] = c.run
		if !c.want {
			runs[i] = func(ctx context.Context) Result {
				ctx, cancel := context.WithTimeout(ctx, hangAfter)
				defer cancel()
				return c.run(ctx)
			}
		}
	}
	results := RunChecks(t.Context(), runs)
	for i, r := range results {
		switch {
		case checks[i].want && !r.OK:
			t.Errorf("%swant ok, got %s", stage, r)
		case !checks[i].want && !r.Hung:
			t.Errorf("%swant hung, got %s", stage, r)
		default:
			t.Logf("%s%s", stage, r)
		}
	}
}

func TestBaselineHangs(t *testing.T) {
	t.Parallel()
	for _, v6 := range []bool{false, true} {
		t.Run(underlay(v6), func(t *testing.T) {
			t.Parallel()
			l := newLab(t, Options{EthMTU: 1280, TunnelMTU: 1280, IPv6Underlay: v6})
			expect(t,
				hangs(l.Download),
				hangs(l.Upload),
				hangs(ping(l, 1200, false, false)),
				works(ping(l, 56, false, false)),
				works(ping(l, 56, true, true)),
			)
			if n, err := l.FragmentsDropped(); err != nil || n == 0 {
				t.Errorf("FragmentsDropped = %d, %v; want > 0: the hang must come from the fragment filter", n, err)
			}
		})
	}
}

func underlay(v6 bool) string {
	if v6 {
		return "ipv6-underlay"
	}
	return "ipv4-underlay"
}

func TestEth1360WorksOnBothUnderlays(t *testing.T) {
	t.Parallel()
	for _, v6 := range []bool{false, true} {
		t.Run(underlay(v6), func(t *testing.T) {
			t.Parallel()
			l := newLab(t, Options{EthMTU: 1360, IPv6Underlay: v6})
			expect(t,
				works(l.Download),
				works(l.Upload),
				works(ping(l, 1252, true, false)), // fills the 1280 tunnel
				works(ping(l, 1232, true, true)),
			)
			if n, err := l.FragmentsDropped(); err != nil || n != 0 {
				t.Errorf("FragmentsDropped = %d, %v; want 0", n, err)
			}
		})
	}
}

func TestEth1340EnoughOnlyForIPv4Underlay(t *testing.T) {
	t.Parallel()
	t.Run("ipv4-underlay", func(t *testing.T) {
		t.Parallel()
		l := newLab(t, Options{EthMTU: 1340})
		expect(t, works(l.Download), works(l.Upload))
	})
	t.Run("ipv6-underlay", func(t *testing.T) {
		t.Parallel()
		l := newLab(t, Options{EthMTU: 1340, IPv6Underlay: true})
		expect(t, hangs(l.Download), hangs(l.Upload))
	})
}

func TestLowerTunnelTo1200Fixes(t *testing.T) {
	t.Parallel()
	l := newLab(t, Options{EthMTU: 1280, TunnelMTU: 1200})
	expect(t,
		works(l.Download),
		works(l.Upload),
		works(ping(l, 1172, true, false)), // fills the 1200 tunnel
	)
	// Too big for the tunnel now fails at once, visibly, instead of hanging.
	if r := l.Ping(t.Context(), 1188, true, false); r.OK || r.Hung || !strings.Contains(r.Err, "message too long") {
		t.Errorf("DF ping 1188 through a 1200 tunnel: want a fast 'message too long', got %s", r)
	}
	// Larger non-DF pings are not checked: the peer's 1280 tunnel replies with
	// outer packets above eth0's MTU, which a veth refuses to receive (real
	// Hyper-V NICs are lenient), so the reply, not the request, would be lost.
}

// Lowering a live tunnel below 1280 loses its IPv6 address for good: raising
// it back does not restore it. This is why raising eth0 is the default fix.
func TestLowerTunnelInPlaceLosesIPv6(t *testing.T) {
	t.Parallel()
	l := newLab(t, Options{})
	if err := l.SetTunnelMTU(1200); err != nil {
		t.Fatal(err)
	}
	expect(t, works(l.Download), works(ping(l, 1172, true, false)))
	if err := l.SetTunnelMTU(1280); err != nil {
		t.Fatal(err)
	}
	if got := l.TunnelMTU(); got != 1280 {
		t.Fatalf("TunnelMTU() = %d, want 1280", got)
	}
	if has := tunnelHasIPv6(t, l); has {
		t.Errorf("%s regained its IPv6 address after going back to 1280; expected it lost", TunnelName)
	}
	if r := l.Ping(t.Context(), 56, false, true); r.OK || r.Hung {
		t.Errorf("IPv6 ping over the tunnel: want a local error, got %s", r)
	}
}

func tunnelHasIPv6(t *testing.T, l *Lab) bool {
	t.Helper()
	var has bool
	err := l.DoWSL(func() error {
		link, err := netlink.LinkByName(TunnelName)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
		for _, a := range addrs {
			has = has || a.IP.Equal(l.WSLTunnelIP(true).AsSlice())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return has
}

// WireGuard pads inner packets to a multiple of 16, so with eth0 1280 the
// largest inner packet over the lab's IPv4 underlay is floor16(1280 − 60) =
// 1216, not 1220: a 1188-byte echo payload crosses, 1189 hangs (measured).
func TestLargestDFPingThroughEth1280(t *testing.T) {
	t.Parallel()
	const icmpEchoHeader = 8
	inner, all := tunnel.Spec{Kind: tunnel.WireGuard}.LargestInner(1280, DefaultTunnelMTU, tunnel.IPv4)
	payload := inner - tunnel.IPv4Header - icmpEchoHeader
	if all || payload != 1188 {
		t.Fatalf("the tunnel arithmetic gives a %d-byte payload (inner %d, all fit %v); the lab measured 1188", payload, inner, all)
	}
	l := newLab(t, Options{EthMTU: 1280})
	expect(t,
		works(ping(l, payload, true, false)),
		hangs(ping(l, payload+1, true, false)),
	)
}

func TestMTUChangesFollowWSLAndTailscale(t *testing.T) {
	t.Parallel()
	l := newLab(t, Options{EthMTU: 1360})
	expect(t, works(l.Download))

	// WSL pushes 1280 again on a Windows connectivity change.
	if err := l.SetEthMTU(1280); err != nil {
		t.Fatal(err)
	}
	if got := l.EthMTU(); got != 1280 {
		t.Errorf("EthMTU() = %d, want 1280", got)
	}
	expect(t, hangs(l.Download))

	// A WSL restart brings eth0 back, fixed again by the caller.
	if err := l.RecreateEth(1360); err != nil {
		t.Fatal(err)
	}
	if got := l.EthMTU(); got != 1360 {
		t.Errorf("after RecreateEth: EthMTU() = %d, want 1360", got)
	}
	expect(t, works(l.Download))

	// A tailscaled reconnect recreates tailscale0 with its addresses.
	oldPID := l.NodePIDs()[0]
	if err := l.RestartTunnel(1280); err != nil {
		t.Fatal(err)
	}
	if l.NodePIDs()[0] == oldPID {
		t.Error("RestartTunnel kept the old node process")
	}
	if got := l.TunnelMTU(); got != 1280 {
		t.Errorf("after RestartTunnel: TunnelMTU() = %d, want 1280", got)
	}
	if !tunnelHasIPv6(t, l) {
		t.Errorf("after RestartTunnel: %s has no IPv6 address", TunnelName)
	}
	expect(t, works(l.Download), works(l.Upload), works(ping(l, 56, false, true)))
}

func TestDoWSLRunsInWSLNamespace(t *testing.T) {
	t.Parallel()
	l := newLab(t, Options{EthMTU: 1300})
	var mtu int
	err := l.DoWSL(func() error {
		link, err := netlink.LinkByName(EthName)
		if err != nil {
			return err
		}
		mtu = link.Attrs().MTU
		return netlink.LinkSetMTU(link, 1360)
	})
	if err != nil {
		t.Fatal(err)
	}
	if mtu != 1300 {
		t.Errorf("eth0 MTU seen in DoWSL = %d, want 1300", mtu)
	}
	if got := l.EthMTU(); got != 1360 {
		t.Errorf("EthMTU() after setting it in DoWSL = %d, want 1360", got)
	}
	// That the borrowed thread comes back is internal/ns's test.
}

func TestCloseLeavesNothing(t *testing.T) {
	t.Parallel()
	netnstest.RequireRoot(t, "creates network namespaces")
	before := rootLinks(t)
	l, err := New(Options{IPv6Underlay: true, CorporateVPN: true, PortTunnel: true})
	if err != nil {
		t.Fatal(err)
	}
	names, pids := l.Namespaces(), l.NodePIDs()
	if len(names) != 4 || len(pids) != 4 {
		t.Fatalf("Namespaces() = %v, NodePIDs() = %v; want 4 of each (wsl, hyperv, peer, corp; two tunnels)", names, pids)
	}
	socket := filepath.Join(uapiDir, l.PortTunnel().Name()+".sock")
	if _, err := os.Stat(socket); err != nil {
		t.Fatalf("the port tunnel's UAPI socket: %v", err)
	}
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("closed in %v", time.Since(start).Round(time.Millisecond))
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	for _, n := range names {
		if strings.Contains(string(out), n) {
			t.Errorf("namespace %s still listed:\n%s", n, out)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node process %d still exists (kill 0: %v)", pid, err)
		}
	}
	for name := range rootLinks(t) {
		if !before[name] && isLabLinkName(name) {
			t.Errorf("link %s appeared in the root namespace", name)
		}
	}
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("UAPI socket %s left behind (stat: %v)", socket, err)
	}
}

func isLabLinkName(name string) bool {
	switch name {
	case EthName, TunnelName, peerTun, peerPTun, hvWSLName, lanName, vpnName, corpName:
		return true
	}
	return strings.HasPrefix(name, portTunnelPrefix)
}

func rootLinks(t *testing.T) map[string]bool {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, i := range ifs {
		m[i.Name] = true
	}
	return m
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{EthMTU: 100}, {TunnelMTU: 70000}, {EthMTU: 1200, IPv6Underlay: true}} {
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), "MTU") {
			t.Errorf("New(%+v) error = %v, want one naming the MTU", o, err)
		}
	}
}

// BenchmarkNewClose measures building and tearing down a lab.
func BenchmarkNewClose(b *testing.B) {
	netnstest.RequireRoot(b, "creates network namespaces")
	var up, down time.Duration
	for b.Loop() {
		start := time.Now()
		l, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		up += mid.Sub(start)
		down += time.Since(mid)
	}
	b.ReportMetric(float64(up.Milliseconds())/float64(b.N), "ms-new/op")
	b.ReportMetric(float64(down.Milliseconds())/float64(b.N), "ms-close/op")
}

func TestUseAfterCloseFailsCleanly(t *testing.T) {
	t.Parallel()
	netnstest.RequireRoot(t, "creates network namespaces")
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.RestartTunnel(1280); err == nil {
		t.Error("RestartTunnel after Close succeeded")
	}
	if err := l.RecreateEth(1280); err == nil {
		t.Error("RecreateEth after Close succeeded")
	}
}

func TestRemoveStaleOnlyTakesDeadOwners(t *testing.T) {
	t.Parallel()
	l := newLab(t, Options{EthMTU: 1360, PortTunnel: true})
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("wslmtu-%d-0badc0de-wsl", dead.Process.Pid)
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", stale).Run() })

	// A port tunnel's socket whose node died with its process.
	deadSocket := filepath.Join(uapiDir, portTunnelPrefix+"dead.sock")
	ln, err := net.Listen("unix", deadSocket)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	t.Cleanup(func() { os.Remove(deadSocket) })
	liveSocket := filepath.Join(uapiDir, l.PortTunnel().Name()+".sock")

	removed, err := RemoveStale()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, stale) {
		t.Errorf("RemoveStale() = %v, want it to include %s", removed, stale)
	}
	if !slices.Contains(removed, deadSocket) {
		t.Errorf("RemoveStale() = %v, want it to include %s", removed, deadSocket)
	}
	if _, err := os.Stat(liveSocket); err != nil {
		t.Errorf("RemoveStale removed the live lab's socket %s: %v", liveSocket, err)
	}
	for _, n := range l.Namespaces() {
		if slices.Contains(removed, n) {
			t.Errorf("RemoveStale removed %s of a live lab", n)
		}
	}
	expect(t, works(ping(l, 56, false, false)), works(l.PortTunnel().Download))
}
