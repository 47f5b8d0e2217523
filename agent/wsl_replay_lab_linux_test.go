package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/testenv/labtest"
	"github.com/wslmtu/wslmtu/internal/testenv/logbuf"
)

// WSL's own sequences, sent by the lab as WSL sends them (internal/lab's
// NATPush, MirroredAddressRefresh, ConsommeAddressChange,
// ConsommeGatewayChange, VMRestart), with the agent on its defaults in the
// lab's WSL and tailscale0 in both shapes: tailscaled's (marked sockets,
// rules 5210–5270, table 52) and a bare wireguard-go device of that name
// (no mark, a UAPI socket). After each step, once the kernel has settled,
// the tunnel's 55 kB GET and PUT and the upload to the server behind the
// Windows VPN must work and nothing may be held twice; the final revert
// must leave `ip rule`, `ip -6 rule` and every table's routes byte-identical.
// The fake-kernel twins are in wsl_replay_fake_linux_test.go.

var labShapes = []lab.TailscaleShape{lab.TailscaleMarked, lab.TailscaleUnmarked}

// replayLab is one lab and the agents that run in it in turn.
type replayLab struct {
	t    *testing.T
	l    *lab.Lab
	dir  string // the state directory, kept across VM restarts
	corp bool   // the lab has a Windows VPN to check
	stop func() error
	logs *logbuf.Buffer
}

func newReplayLab(t *testing.T, opts lab.Options) *replayLab {
	t.Helper()
	return &replayLab{t: t, l: labtest.New(t, opts), dir: t.TempDir(), corp: opts.CorporateVPN}
}

// start runs the agent with cfg in the lab's WSL (whatever namespace that
// is now) until stop or the end of the test; it returns once the agent has
// made its first reconcile and the kernel has settled.
func (r *replayLab) start(cfg config.Config) {
	t := r.t
	t.Helper()
	nsn, nl := r.l.WSLNamespace(), r.l.WSLNetlink()
	logs := &logbuf.Buffer{}
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// mss_clamp is off, so the agent never runs iptables, which would act
		// on this goroutine's (the host's) namespace.
		done <- Run(ctx, Options{
			Config: cfg,
			Host:   fix.HostAt(nl, r.l.Sources(), r.dir),
			Netns:  nsn,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Notify: func(string) {},
			Ready:  ready,
		})
	}()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(5 * time.Second):
				runErr = context.DeadlineExceeded
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("agent log:\n%s", logs)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped before ready: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("agent not ready within 5s")
	}
	r.stop, r.logs = stop, logs
	r.settle()
}

// snapshot is the WSL kernel's links, routes and rules, as detect reads
// them.
func (r *replayLab) snapshot() string {
	snap, err := detect.Read(&detect.Kernel{H: r.l.WSLNetlink()})
	if err != nil {
		return err.Error()
	}
	return fmt.Sprint(snap)
}

// settle waits until the kernel has not changed for 250 ms (at most 3 s):
// WSL's step is done and the agent has done what it does about it.
func (r *replayLab) settle() {
	deadline := time.Now().Add(3 * time.Second)
	last, since := r.snapshot(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(25 * time.Millisecond)
		if cur := r.snapshot(); cur != last {
			last, since = cur, time.Now()
		} else if time.Since(since) >= 250*time.Millisecond {
			return
		}
	}
}

// works settles, then runs the checks concurrently: the tunnel's 55 kB
// GET and PUT, the upload to the server behind the Windows VPN, and no
// rule or route held twice. It stops the test at the first stage that
// fails, saying what failed and what the kernel holds.
func (r *replayLab) works(stage string) {
	t := r.t
	t.Helper()
	r.settle()
	checks := []func(context.Context) lab.Result{r.l.Download, r.l.Upload}
	if r.corp {
		checks = append(checks, func(ctx context.Context) lab.Result { return r.l.CorporateUpload(ctx, false) })
	}
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
	var failed []string
	for _, res := range results {
		if !res.OK {
			failed = append(failed, res.String())
		}
	}
	dump, err := r.l.RoutingDump()
	if err != nil {
		t.Fatal(err)
	}
	if d := duplicated(dump); d != "" {
		failed = append(failed, d)
	}
	if len(failed) > 0 {
		t.Fatalf("%s: eth0 %d, tailscale0 %d:\n  %s\n%s", stage, r.l.EthMTU(), r.l.TunnelMTU(), strings.Join(failed, "\n  "), dump)
	}
	t.Logf("%s: eth0 %d, tailscale0 %d; %d checks ok", stage, r.l.EthMTU(), r.l.TunnelMTU(), len(results))
}

var (
	rulePref    = regexp.MustCompile(`^\d+:\s*`)
	routeMetric = regexp.MustCompile(` (mtu( lock)?|metric) \d+`)
)

// duplicated names the rules that `ip rule` lists twice but for their
// priority, and the routes `ip route show table all` lists twice but for
// their metric or mtu.
func duplicated(dump string) string {
	seen := map[string]bool{}
	var out []string
	section := ""
	for _, line := range strings.Split(dump, "\n") {
		if strings.HasPrefix(line, "$ ") {
			section = line
			continue
		}
		key := line
		if strings.Contains(section, " rule") {
			key = rulePref.ReplaceAllString(line, "")
		} else {
			key = routeMetric.ReplaceAllString(line, "")
		}
		key = section + "|" + strings.TrimSpace(key)
		if line != "" && seen[key] {
			out = append(out, fmt.Sprintf("held twice (%s): %s", strings.TrimPrefix(section, "$ "), strings.TrimSpace(line)))
		}
		seen[key] = true
	}
	return strings.Join(out, "; ")
}

// revertLeaves stops the agent (revert_on_stop) and compares `ip rule`,
// `ip -6 rule` and every table's routes with before.
func (r *replayLab) revertLeaves(before string) {
	t := r.t
	t.Helper()
	if err := r.stop(); err != nil {
		t.Fatalf("agent.Run returned %v", err)
	}
	after, err := r.l.RoutingDump()
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("after the agent's revert:\n%s\nbefore it started:\n%s", after, before)
	}
}

func (r *replayLab) dump() string {
	r.t.Helper()
	d, err := r.l.RoutingDump()
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// A NAT push in both directions, as the Windows VPN disconnects (1500),
// connects (1280), reconnects below 1280 (1200) and comes back at 1280.
func TestLabReplayNATPush(t *testing.T) {
	t.Parallel()
	for _, shape := range labShapes {
		t.Run(shape.String(), func(t *testing.T) {
			t.Parallel()
			r := newReplayLab(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280, CorporateVPN: true, Tailscale: shape})
			// Below 1280 the kernel drops eth0's IPv6, link-local included;
			// back at 1280 it makes it again, and its routes then come after
			// tailscale0's in `ip -6 route`. WSL has been there once before
			// the baseline, so the order is the one the steps leave, and the
			// comparison after the revert sees only the agent's doing.
			for _, w := range []int{1200, 1280} {
				if err := r.l.NATPush(w); err != nil {
					t.Fatal(err)
				}
			}
			before := r.dump()
			r.start(labAgentConfig())
			r.works("start")
			for _, w := range []int{1500, 1280, 1200, 1280} {
				if err := r.l.SetVPNMTU(w); err != nil {
					t.Fatal(err)
				}
				if err := r.l.NATPush(w); err != nil {
					t.Fatal(err)
				}
				r.works(fmt.Sprintf("Windows VPN at %d, WSL pushed it", w))
			}
			r.revertLeaves(before)
			if got := r.l.EthMTU(); got != 1280 {
				t.Errorf("eth0 %d after the revert, want 1280", got)
			}
		})
	}
}

// Mirrored: every Windows change refreshes eth0's addresses, IPv4 and IPv6
// (the IPv4 routes through eth0 flushed silently), and WSL sends its
// routes again. The agent lowers the tunnel there.
func TestLabReplayMirroredAddressRefresh(t *testing.T) {
	t.Parallel()
	for _, shape := range labShapes {
		t.Run(shape.String(), func(t *testing.T) {
			t.Parallel()
			r := newReplayLab(t, lab.Options{EthMTU: 1400, TunnelMTU: 1420, Mirrored: true, IPv6Underlay: true, Tailscale: shape})
			before := r.dump()
			r.start(labAgentConfig())
			r.works("start")
			for i := 1; i <= 2; i++ {
				if err := r.l.MirroredAddressRefresh(); err != nil {
					t.Fatal(err)
				}
				r.works(fmt.Sprintf("address refresh %d", i))
			}
			if got := r.l.EthMTU(); got != 1400 {
				t.Errorf("eth0 %d in mirrored mode, want the adapter's 1400", got)
			}
			r.revertLeaves(before)
			if got := r.l.TunnelMTU(); got != 1420 {
				t.Errorf("tailscale0 %d after the revert, want 1420", got)
			}
		})
	}
}

// Consomme: the host's address changes and back; deleting the old one
// flushes every IPv4 route through eth0, table 5200's too, silently.
func TestLabReplayConsommeAddressChange(t *testing.T) {
	t.Parallel()
	for _, shape := range labShapes {
		t.Run(shape.String(), func(t *testing.T) {
			t.Parallel()
			r := newReplayLab(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280, Consomme: true, CorporateVPN: true, Tailscale: shape})
			before := r.dump()
			r.start(labAgentConfig())
			r.works("start")
			for _, p := range []netip.Prefix{lab.AltEthAddr4, lab.EthAddr4} {
				if err := r.l.ConsommeAddressChange(p); err != nil {
					t.Fatal(err)
				}
				r.works("eth0's address changed to " + p.String())
			}
			r.revertLeaves(before)
		})
	}
}

// Consomme: the host's gateway changes (.1 → .9) and back.
func TestLabReplayConsommeGatewayChange(t *testing.T) {
	t.Parallel()
	for _, shape := range labShapes {
		t.Run(shape.String(), func(t *testing.T) {
			t.Parallel()
			r := newReplayLab(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280, Consomme: true, CorporateVPN: true, Tailscale: shape})
			before := r.dump()
			r.start(labAgentConfig())
			r.works("start")
			for _, gw := range []netip.Addr{lab.AltGateway4, lab.Gateway4} {
				if err := r.l.ConsommeGatewayChange(gw); err != nil {
					t.Fatal(err)
				}
				r.works("the gateway changed to " + gw.String())
			}
			r.revertLeaves(before)
		})
	}
}

// A WSL restart with the state directory kept. Boot 1: the Windows VPN at
// 1280 and a 1420 tunnel: the agent raises eth0 to 1500 and records 1280;
// the VM stops with the agent in it (nothing reverts). Boot 2: no VPN,
// eth0 up at 1500, which is Windows' value now. Nothing may be capped at
// 1280, and the revert must leave eth0 at 1500 and the tunnel working.
func TestLabReplayVMRestart(t *testing.T) {
	t.Parallel()
	for _, shape := range labShapes {
		t.Run(shape.String(), func(t *testing.T) {
			t.Parallel()
			r := newReplayLab(t, lab.Options{EthMTU: 1280, TunnelMTU: 1420, CorporateVPN: true, Tailscale: shape})
			boot1 := labAgentConfig()
			boot1.RevertOnStop = false // the VM stops under it
			r.start(boot1)
			r.works("boot 1")
			if got := r.l.EthMTU(); got != 1500 {
				t.Fatalf("boot 1: eth0 %d, want 1500 (tailscale0 1420 + 80)", got)
			}
			bootID := r.l.BootID()
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}

			if err := r.l.VMRestart(); err != nil {
				t.Fatal(err)
			}
			if r.l.BootID() == bootID {
				t.Fatal("the boot id did not change")
			}
			if err := r.l.SetVPNMTU(1500); err != nil { // no VPN on Windows now
				t.Fatal(err)
			}
			if err := r.l.NATPush(1500); err != nil {
				t.Fatal(err)
			}
			if err := r.l.RestartTunnel(1420); err != nil { // tailscaled starts
				t.Fatal(err)
			}
			before := r.dump()
			r.start(labAgentConfig())
			r.works("boot 2")
			routes, err := r.l.WSLNetlink().RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
			if err != nil {
				t.Fatal(err)
			}
			for _, rt := range routes {
				if detect.IsDefaultRoute(rt.Dst) && rt.MTU != 0 && rt.MTU < 1500 {
					t.Errorf("boot 2: the default route has mtu %d, but Windows chose 1500: every packet is capped for nothing", rt.MTU)
				}
			}
			r.revertLeaves(before)
			if got := r.l.EthMTU(); got != 1500 {
				t.Errorf("boot 2: eth0 %d after the revert, want 1500: boot 1's record is no baseline for boot 2", got)
			}
			r.works("boot 2, after the revert")
		})
	}
}
