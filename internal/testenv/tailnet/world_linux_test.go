package tailnet

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/testenv/labtest"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// world is one lab with a tailnet: WSL behind Hyper-V's NAT with a server
// behind a Windows VPN adapter at 1280, a peer running tailscaled, the
// control server, and WSL's tailscaled (not started until the scenario
// says so).
type world struct {
	bins          binaries
	lab           *lab.Lab
	ctl           *control
	peer, wsl     *node
	peerIP, wslIP netip.Addr
	agent         *agent // nil until started, or without the agent
	// windows is the MTU WSL last pushed into eth0, the smallest Windows
	// adapter's: what every packet but the tunnel's must keep.
	windows int
	// latencies are the repair latencies the agent logged, per step.
	latencies []string
}

var logBuildOnce sync.Once

func newWorld(t *testing.T) *world {
	t.Helper()
	netnstest.RequireRoot(t, "runs tailscaled and wslmtu in network namespaces")
	w := &world{windows: lab.DefaultEthMTU}
	w.bins = getBinaries(t)
	logBuildOnce.Do(func() {
		how := fmt.Sprintf("built in %v (cold)", w.bins.tailscaleBuild.Round(100*time.Millisecond))
		if w.bins.tailscaleFromCached {
			how = fmt.Sprintf("found in %s in %v (warm)", cacheRoot, w.bins.tailscaleBuild.Round(time.Millisecond))
		}
		t.Logf("tailscaled and tailscale %s %s; wslmtu built in %v", w.bins.version, how, w.bins.wslmtuBuild.Round(100*time.Millisecond))
	})
	w.lab = labtest.New(t, lab.Options{ExternalTunnel: true, CorporateVPN: true})
	w.ctl = startControl(t, w.lab)
	w.peer = newNode(t, w, "peer", w.lab.PeerNetNS(), false)
	w.peer.start(t)
	w.peerIP = w.peer.up(t)
	w.wsl = newNode(t, w, "wsl", w.lab.WSLNetNS(), true)
	t.Cleanup(func() {
		if len(w.latencies) > 0 {
			t.Logf("repair latencies the agent logged:\n  %s", strings.Join(w.latencies, "\n  "))
		}
	})
	return w
}

// startTailscaled starts WSL's tailscaled, joins it to the tailnet and
// waits for a direct path to the peer.
func (w *world) startTailscaled(t *testing.T) {
	t.Helper()
	w.wsl.start(t)
	w.wslIP = w.wsl.up(t)
	t.Logf("tailscaled in WSL up as %s", w.wslIP)
	w.waitTunnel(t)
}

// waitTunnel returns once each node reaches the other directly: the peer
// learns WSL's NAT mapping only from WSL's packets and control's netmap,
// a few seconds after WSL is up, and drops WSL's packets until then.
func (w *world) waitTunnel(t *testing.T) {
	t.Helper()
	start := time.Now()
	there := w.wsl.waitDirect(t, w.peerIP)
	back := w.peer.waitDirect(t, w.wslIP)
	t.Logf("direct both ways after %v: %s; %s", time.Since(start).Round(time.Millisecond), there, back)
}

// restartTailscaled is systemctl restart tailscaled: SIGTERM (tailscale0
// and tailscaled's rules go), then a new tailscaled on the same state,
// which reconnects by itself with a new tailscale0 at 1280.
func (w *world) restartTailscaled(t *testing.T) {
	t.Helper()
	old := w.tunnelIndex(t)
	w.wsl.stop(t)
	if got := w.lab.TunnelMTU(); got != 0 {
		t.Fatalf("tailscale0 (mtu %d) still exists after tailscaled stopped", got)
	}
	w.wsl.start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := w.wsl.cli("status", "--json")
		if strings.Contains(out, `"BackendState": "Running"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tailscaled in WSL not running 30s after its restart:\n%s", w.wsl.log.Tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if idx := w.tunnelIndex(t); idx == old {
		t.Fatalf("tailscale0 has its old ifindex %d after tailscaled restarted", idx)
	}
	t.Logf("tailscaled in WSL restarted, a new tailscale0 at mtu %d", w.lab.TunnelMTU())
	w.waitTunnel(t)
}

func (w *world) tunnelIndex(t *testing.T) int {
	t.Helper()
	link, err := w.lab.WSLNetlink().LinkByName(lab.TunnelName)
	if err != nil {
		t.Fatalf("tailscale0 in WSL: %v", err)
	}
	return link.Attrs().Index
}

// pushWSL is WSL pushing a new smallest Windows adapter MTU: the Windows
// VPN adapter is at mtu now, and WSL sets eth0 to it (one RTM_NEWLINK,
// nothing else).
func (w *world) pushWSL(t *testing.T, mtu int) {
	t.Helper()
	if err := w.lab.SetVPNMTU(mtu); err != nil {
		t.Fatal(err)
	}
	if err := w.lab.SetEthMTU(mtu); err != nil {
		t.Fatal(err)
	}
	w.windows = mtu
}

// pathMTU is the MTU a packet from WSL to dst with mark gets: its route's
// mtu, else its device's.
func (w *world) pathMTU(dst netip.Addr, mark uint32) (int, error) {
	nl := w.lab.WSLNetlink()
	routes, err := nl.RouteGetWithOptions(dst.AsSlice(), &netlink.RouteGetOptions{Mark: mark})
	if err != nil {
		return 0, err
	}
	if len(routes) == 0 {
		return 0, fmt.Errorf("no route to %s", dst)
	}
	if routes[0].MTU != 0 {
		return routes[0].MTU, nil
	}
	link, err := nl.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return 0, err
	}
	return link.Attrs().MTU, nil
}

// unsettled says what differs from the repaired state, "" when nothing:
// tailscaled's packets (its mark) to the peer get tailscale0's MTU + 80
// or more, every other packet gets the Windows value.
func (w *world) unsettled(tunnel bool) string {
	var diffs []string
	if tunnel {
		tun := w.lab.TunnelMTU()
		got, err := w.pathMTU(w.lab.PeerLANIP(), lab.TailscaleMark)
		if err != nil || tun == 0 || got < tun+80 {
			diffs = append(diffs, fmt.Sprintf("tailscaled's packets get mtu %d (%v), tailscale0 is %d", got, err, tun))
		}
	}
	if got, err := w.pathMTU(w.lab.PeerLANIP(), 0); err != nil || got != w.windows {
		diffs = append(diffs, fmt.Sprintf("other packets get mtu %d (%v), Windows' value is %d", got, err, w.windows))
	}
	return strings.Join(diffs, "; ")
}

// step does what a scenario step says, waits (3 s at most) for the agent to
// repair, logs the repairs the agent logged meanwhile, and checks the
// transfers: over the tunnel if tunnel, and always the corporate upload.
func (w *world) step(t *testing.T, what string, tunnel bool, do func()) {
	t.Helper()
	mark := 0
	if w.agent != nil {
		mark = w.agent.log.Len()
	}
	start := time.Now()
	do()
	settled := w.settle(t, what, tunnel, start)
	if w.agent != nil {
		// The agent logs after its writes, so its lines may trail the state.
		for end := time.Now().Add(200 * time.Millisecond); settled && time.Now().Before(end); time.Sleep(time.Millisecond) {
			if lines, _ := w.agent.repairs(mark); len(lines) > 0 {
				break
			}
		}
		lines, lat := w.agent.repairs(mark)
		for _, l := range lines {
			t.Logf("  agent: %s", l)
		}
		if len(lat) > 0 {
			w.latencies = append(w.latencies, fmt.Sprintf("%s: %v", what, lat))
		}
	}
	w.checks(t, what, tunnel)
}

func (w *world) settle(t *testing.T, what string, tunnel bool, start time.Time) bool {
	t.Helper()
	deadline := start.Add(3 * time.Second)
	for {
		diff := w.unsettled(tunnel)
		if diff == "" {
			t.Logf("%s: eth0 %d, tailscale0 %d; settled %v after the step began", what, w.lab.EthMTU(), w.lab.TunnelMTU(), time.Since(start).Round(10*time.Microsecond))
			return true
		}
		if time.Now().After(deadline) {
			t.Logf("%s: not repaired 3s after the step began: %s", what, diff)
			return false
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// runChecks runs, concurrently, the four 55 kB transfers over tailscale0
// (if tunnel) and the 55 kB upload to the server behind the Windows VPN.
func (w *world) runChecks(t *testing.T, tunnel bool) []lab.Result {
	var checks []func(context.Context) lab.Result
	if tunnel {
		checks = w.lab.Transfers("tailscale0", w.wslIP, w.peerIP)
	}
	checks = append(checks, func(ctx context.Context) lab.Result { return w.lab.CorporateUpload(ctx, false) })
	return lab.RunChecks(t.Context(), checks)
}

// checks runs the checks; all must succeed.
func (w *world) checks(t *testing.T, stage string, tunnel bool) {
	t.Helper()
	w.judge(t, stage, w.runChecks(t, tunnel), func(lab.Result) string { return "ok" })
}

// checksBroken runs the checks on a WSL left as the black hole makes it:
// the transfers whose data crosses WSL→peer must hang, and the upload to
// the server behind the VPN must succeed. The other two transfers are not
// judged: the lab's eth0 refuses single frames above its MTU but lets GSO
// batches through, so whether they cross is up to how tailscaled batches.
func (w *world) checksBroken(t *testing.T, stage string) {
	t.Helper()
	w.judge(t, stage, w.runChecks(t, true), func(r lab.Result) string {
		switch {
		case strings.HasPrefix(r.Check, "GET peer→WSL"), strings.HasPrefix(r.Check, "PUT WSL→peer"):
			return "hung"
		case strings.HasPrefix(r.Check, "corporate"):
			return "ok"
		}
		return ""
	})
}

// judge compares each result with want's "ok" or "hung" ("" for any) and
// fails the test, with what the kernel holds, if one differs.
func (w *world) judge(t *testing.T, stage string, results []lab.Result, want func(lab.Result) string) {
	t.Helper()
	bad := false
	var b strings.Builder
	for _, r := range results {
		got := "ok"
		if !r.OK {
			got = "failed"
			// A transfer cancelled at the deadline may end in the
			// transport's EOF rather than a timeout: a hang all the same.
			if r.Hung || r.Duration >= lab.CheckTimeout {
				got = "hung"
			}
		}
		note := ""
		if wr := want(r); wr != "" && got != wr {
			bad, note = true, "   <-- want "+wr
		}
		fmt.Fprintf(&b, "\n  %s%s", r, note)
	}
	if !bad {
		t.Logf("%s:%s", stage, b.String())
		return
	}
	frags, _ := w.lab.FragmentsDropped()
	icmp, _ := w.lab.ICMPDropped()
	dump, _ := w.lab.RoutingDump()
	t.Fatalf("%s:%s\neth0 %d, tailscale0 %d; Hyper-V dropped %d fragments and kept %d ICMP too-big from WSL\n%s",
		stage, b.String(), w.lab.EthMTU(), w.lab.TunnelMTU(), frags, icmp, dump)
}
