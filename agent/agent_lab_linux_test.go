package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/testenv/labtest"
	"github.com/wslmtu/wslmtu/internal/testenv/logbuf"
)

// labAgent is agent.Run against a lab's WSL namespace.
type labAgent struct {
	stateDir string
	logs     *logbuf.Buffer
	stop     func() error
}

// startAgent runs the agent on the lab's WSL until the test ends (or stop),
// and returns once its first reconcile is done.
func startAgent(t *testing.T, l *lab.Lab, cfg config.Config) *labAgent {
	t.Helper()
	nsn, nl := l.WSLNamespace(), l.WSLNetlink()
	a := &labAgent{stateDir: t.TempDir(), logs: &logbuf.Buffer{}}
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// mss_clamp is off and the state directory is fresh, so the agent
		// never touches iptables, which would act on this goroutine's
		// (the host's) namespace rather than the lab's.
		done <- Run(ctx, Options{
			Config: cfg,
			Host:   fix.HostAt(nl, l.Sources(), a.stateDir),
			Netns:  nsn,
			Logger: slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Notify: func(string) {},
			Ready:  ready,
		})
	}()
	var stopOnce sync.Once
	var runErr error
	a.stop = func() error {
		stopOnce.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(5 * time.Second):
				runErr = context.DeadlineExceeded
				t.Errorf("agent.Run did not return within 5s of cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		a.stop()
		if t.Failed() || testing.Verbose() {
			t.Logf("agent log:\n%s", a.logs.String())
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped before ready: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("agent not ready within 5s")
	}
	return a
}

func labAgentConfig() config.Config {
	cfg := config.Default()
	cfg.AssumeWSL = true
	cfg.RevertOnStop = true
	return cfg
}

// TestAgentInLab runs the agent against the namespace model of WSL2 and
// replays what breaks a one-time fix: tailscaled reconnecting at another MTU
// and WSL recreating eth0 at 1280. After each, the agent must have eth0 wide
// enough again within 2 s, and the 55 kB transfers that hang without it
// must cross in both directions.
func TestAgentInLab(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280})
	a := startAgent(t, l, labAgentConfig())

	// The first reconcile happens before Ready.
	if got := l.EthMTU(); got != 1360 {
		t.Fatalf("eth0 after start = %d, want 1360", got)
	}
	transfersWork(t, l, "after start")

	// tailscaled reconnects, this time at 1400: eth0 must follow to exactly
	// 1480. wireguard-go (like tailscaled's fork of it) creates the tun at
	// the kernel's default 1500 and only then sets its MTU and brings it up;
	// the agent leaves down tunnels out, so that 1500 never counts.
	if err := l.RestartTunnel(1400); err != nil {
		t.Fatalf("RestartTunnel(1400): %v", err)
	}
	waitEth(t, l, 1480, 2*time.Second, "after tailscale0 came back at 1400")
	transfersWork(t, l, "tunnel 1400")

	// WSL restarts: eth0 is deleted and made again at 1280.
	if err := l.RecreateEth(1280); err != nil {
		t.Fatalf("RecreateEth(1280): %v", err)
	}
	waitEth(t, l, 1480, 2*time.Second, "after eth0 was recreated at 1280")
	transfersWork(t, l, "eth0 recreated")

	if st, err := agentstatus.Read(a.stateDir); err == nil && st.LastRepair != nil {
		t.Logf("repairs: %d, last: %s", st.Repairs, st.LastRepair)
	}

	// revert_on_stop puts back the MTU eth0 had before the agent first wrote it.
	if err := a.stop(); err != nil {
		t.Fatalf("agent.Run returned %v", err)
	}
	if got := l.EthMTU(); got != 1280 {
		t.Errorf("eth0 after stop with revert_on_stop = %d, want 1280", got)
	}
}

// waitEth waits until eth0 is at least want, since the agent repairs from
// its own goroutine, and reports how long that took.
func waitEth(t *testing.T, l *lab.Lab, want int, timeout time.Duration, when string) {
	t.Helper()
	start := time.Now()
	for {
		got := l.EthMTU()
		if got == want {
			t.Logf("%s: eth0 %d after %v", when, got, time.Since(start).Round(time.Microsecond))
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: eth0 = %d after %v, want %d", when, got, timeout, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// transfersWork runs the 55 kB download and upload concurrently.
func transfersWork(t *testing.T, l *lab.Lab, stage string) {
	t.Helper()
	runChecks(t, stage, []func(context.Context) lab.Result{l.Download, l.Upload})
}

// runChecks runs checks concurrently; each must succeed.
func runChecks(t *testing.T, stage string, checks []func(context.Context) lab.Result) {
	t.Helper()
	results := make([]lab.Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c(t.Context())
		}()
	}
	wg.Wait()
	for _, r := range results {
		if !r.OK {
			t.Errorf("%s: want ok, got %s", stage, r)
		} else {
			t.Logf("%s: %s", stage, r)
		}
	}
}

// TestAgentKeepsTheTunnelScopeInLab: the agent with the defaults (auto,
// outer_scope tunnel) on a WSL with two tunnels — tailscale0, known by
// tailscaled's mark, and a wireguard-go device known only by its listen
// port — and a server behind a Windows VPN adapter at 1280. It must keep the
// scope in force through what WSL and the tunnels do: a default route
// rewritten without its MTU, WSL pushing a new eth0 MTU (1300, then 1280
// again), and the port tunnel reconnecting on a new port. After each, the
// tunnels carry 55 kB both ways, the corporate upload keeps working, no rule
// is duplicated, and revert_on_stop leaves ip rule / ip route byte-identical.
func TestAgentKeepsTheTunnelScopeInLab(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280, IPv6Underlay: true, CorporateVPN: true, PortTunnel: true})
	pt := l.PortTunnel()
	before, err := l.RoutingDump()
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, l, labAgentConfig())
	k := labKernel{t: t, l: l}

	want := scopeState{eth: 1360, route: 1280, port: lab.PortTunnelPort}
	k.waitFor("start", want)
	everythingWorks(t, l, "after start")

	// WSL rewrites both default routes without the MTU (Windows network
	// change): a reset like any other.
	mark := a.logs.Len()
	start := time.Now()
	if err := l.RewriteDefaultRoutes(); err != nil {
		t.Fatal(err)
	}
	k.waitForSince("default routes rewritten without the mtu", want, start, func() string { return a.logs.Since(mark) })
	everythingWorks(t, l, "routes repaired")

	// The VPN adapter comes back at 1300 and WSL pushes the new minimum;
	// then back to 1280. Every packet but the tunnels' follows W.
	for _, w := range []int{1300, 1280} {
		if err := l.SetVPNMTU(w); err != nil {
			t.Fatal(err)
		}
		mark, start = a.logs.Len(), time.Now()
		if err := l.SetEthMTU(w); err != nil {
			t.Fatal(err)
		}
		want.route = w
		k.waitForSince(fmt.Sprintf("WSL pushed eth0 %d", w), want, start, func() string { return a.logs.Since(mark) })
		everythingWorks(t, l, fmt.Sprintf("W %d", w))
	}

	// The port tunnel reconnects on a new listen port: its rules follow.
	mark, start = a.logs.Len(), time.Now()
	if err := pt.Restart(pt.MTU(), lab.PortTunnelPort+8); err != nil {
		t.Fatal(err)
	}
	want.port = lab.PortTunnelPort + 8
	k.waitForSince(fmt.Sprintf("%s reconnected on port %d", pt.Name(), want.port), want, start, func() string { return a.logs.Since(mark) })
	everythingWorks(t, l, "after the reconnect")

	if st, err := agentstatus.Read(a.stateDir); err == nil {
		t.Logf("repairs: %d (%v), last: %s", st.Repairs, st.RepairsBy, st.LastRepair)
	}
	if err := a.stop(); err != nil {
		t.Fatalf("agent.Run returned %v", err)
	}
	if got := l.EthMTU(); got != 1280 {
		t.Errorf("eth0 after stop with revert_on_stop = %d, want 1280", got)
	}
	if after, err := l.RoutingDump(); err != nil || after != before {
		t.Errorf("after stop with revert_on_stop (%v):\n%s\nbefore:\n%s", err, after, before)
	}
}

// scopeState is what the tunnel scope holds in the lab's WSL: eth0 raised,
// both default routes at W, and for each family one rule pair per tunnel
// (tailscale0 by mark, the port tunnel by port).
type scopeState struct {
	eth, route, port int
}

// labKernel reads the lab's WSL for scopeState.
type labKernel struct {
	t *testing.T
	l *lab.Lab
}

func (k labKernel) eth() netlink.Link {
	link, err := k.l.WSLNetlink().LinkByName(lab.EthName)
	if err != nil {
		k.t.Fatal(err)
	}
	return link
}

// state describes what differs from want, "" when nothing does.
func (k labKernel) state(want scopeState) string {
	nl := k.l.WSLNetlink()
	var diffs []string
	if got := k.l.EthMTU(); got != want.eth {
		diffs = append(diffs, fmt.Sprintf("eth0 %d", got))
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := nl.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err.Error()
		}
		for _, r := range routes {
			if detect.IsDefaultRoute(r.Dst) && r.MTU != want.route {
				diffs = append(diffs, fmt.Sprintf("default route %s mtu %d", r.Gw, r.MTU))
			}
		}
		rules, err := nl.RuleList(family)
		if err != nil {
			return err.Error()
		}
		var ours []string
		for _, r := range rules {
			if r.Priority == 5190 || r.Priority == 5200 {
				sel := fmt.Sprintf("fwmark %#x", r.Mark)
				if r.Sport != nil {
					sel = fmt.Sprintf("sport %d", r.Sport.Start)
				}
				ours = append(ours, fmt.Sprintf("%d %s", r.Priority, sel))
			}
		}
		sort.Strings(ours)
		wantRules := []string{"5190 fwmark 0x80000", fmt.Sprintf("5190 sport %d", want.port), "5200 fwmark 0x80000", fmt.Sprintf("5200 sport %d", want.port)}
		if !slices.Equal(ours, wantRules) {
			diffs = append(diffs, fmt.Sprintf("family %d rules %q", family, ours))
		}
	}
	return strings.Join(diffs, "; ")
}

func (k labKernel) waitFor(when string, want scopeState) {
	k.t.Helper()
	k.waitForSince(when, want, time.Now(), nil)
}

// waitForSince waits until the lab holds want, and reports how long after
// start that was observed (polled every 0.5 ms) and the repairs the agent
// logged meanwhile, with the latency it measured from the kernel's event.
func (k labKernel) waitForSince(when string, want scopeState, start time.Time, logs func() string) {
	k.t.Helper()
	deadline := start.Add(2 * time.Second)
	for {
		diff := k.state(want)
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("%s: after 2s still %s; want eth0 %d, default routes mtu %d, rules for port %d", when, diff, want.eth, want.route, want.port)
		}
		time.Sleep(500 * time.Microsecond)
	}
	k.t.Logf("%s: repaired, observed %v after the change", when, time.Since(start).Round(10*time.Microsecond))
	if logs == nil {
		return
	}
	// The agent logs after its writes, so the lines may trail the state.
	for end := time.Now().Add(200 * time.Millisecond); !strings.Contains(logs(), "msg=repaired") && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	for _, line := range strings.Split(logs(), "\n") {
		if strings.Contains(line, "msg=repaired") {
			k.t.Logf("  agent: %s", line[strings.Index(line, "msg="):])
		}
	}
}

// everythingWorks runs, concurrently, the 55 kB transfers over both
// tunnels and the uploads to the server behind the VPN.
func everythingWorks(t *testing.T, l *lab.Lab, stage string) {
	t.Helper()
	pt := l.PortTunnel()
	checks := []func(context.Context) lab.Result{l.Download, l.Upload, pt.Download, pt.Upload,
		func(ctx context.Context) lab.Result { return l.CorporateUpload(ctx, false) },
		func(ctx context.Context) lab.Result { return l.CorporateUpload(ctx, true) },
	}
	runChecks(t, stage, checks)
}
