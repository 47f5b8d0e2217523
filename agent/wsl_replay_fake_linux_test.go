package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
	"github.com/wslmtu/wslmtu/internal/testenv/logbuf"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// WSL's own sequences (internal/testenv/fakekernel's NATPush, MirroredAddressRefresh,
// ConsommeAddressChange, ConsommeGatewayChange, VMRestart) replayed against
// the agent on its defaults, with tailscale0 in both shapes: tailscaled's
// (its sockets marked 0x80000, its rules 5210–5270 and table 52) and a bare
// wireguard-go device of that name (no mark, a UAPI socket wgctrl reads).
// After each step the kernel must send the tunnel's packets whole, keep the
// corporate server's within what Windows chose, and hold nothing twice; the
// final revert must leave the kernel as it was. agent/wsl_replay_lab_linux_test.go
// replays the same sequences on real netlink.

// Shapes of tailscale0.
const (
	marked   = "tailscaled"   // marks its sockets, has its own rules
	unmarked = "wireguard-go" // no mark; wgctrl answers with its port
)

var shapes = []string{marked, unmarked}

// Addresses the checks route to: the tunnel's peer on the LAN beyond
// Hyper-V, and the server behind the Windows VPN.
const (
	peerLAN    = "192.168.50.2"
	corpServer = "10.8.0.2"
)

// replay is one fake WSL VM and the agents that run on it in turn.
type replay struct {
	t     *testing.T
	k     *fakekernel.Kernel
	mode  string
	shape string
	// w is what Windows chose: the smallest connected Windows adapter
	// (the VPN's, when one is connected). Ordinary packets above it are
	// lost; in mirrored mode it is eth0's adapter, which also refuses the
	// tunnel's packets above it.
	w   int
	dir string // the state directory, kept across VM restarts
	run *replayAgent
}

type replayAgent struct {
	logs *logbuf.Buffer
	stop func()
	idle chan chan<- loopView
}

func newReplay(t *testing.T, mode, shape string, ethMTU, tunnelMTU int) *replay {
	t.Helper()
	r := &replay{t: t, k: fakekernel.NewWSLUnmarked(ethMTU, tunnelMTU), mode: mode, shape: shape, w: ethMTU,
		dir: filepath.Join(t.TempDir(), "state")}
	r.tunnelShape()
	return r
}

// tunnelShape gives tailscale0 the shape's marks, rules or socket.
func (r *replay) tunnelShape() {
	switch r.shape {
	case marked:
		r.k.AddTailscaledRules()
	case unmarked:
		r.k.SetWireGuard("tailscale0", detect.WireGuardDevice{ListenPort: fakekernel.TailscaledPort})
	}
}

// bootFS serves the kernel's boot id, which changes with each VM restart.
type bootFS struct {
	fstest.MapFS
	k *fakekernel.Kernel
}

func (b bootFS) Open(name string) (fs.File, error) {
	if name == "proc/sys/kernel/random/boot_id" {
		return fstest.MapFS{name: {Data: []byte(b.k.BootID() + "\n")}}.Open(name)
	}
	return b.MapFS.Open(name)
}

// ReadFile is MapFS's, which fs.ReadFile prefers to Open: it must serve the
// boot id too.
func (b bootFS) ReadFile(name string) ([]byte, error) {
	if name == "proc/sys/kernel/random/boot_id" {
		return []byte(b.k.BootID() + "\n"), nil
	}
	return b.MapFS.ReadFile(name)
}

func (r *replay) sources() detect.Sources {
	mode := r.mode
	return detect.Sources{
		Root: bootFS{k: r.k, MapFS: fstest.MapFS{
			"proc/sys/kernel/osrelease":          {Data: []byte("6.6.87.2-microsoft-standard-WSL2\n")},
			"proc/sys/fs/binfmt_misc/WSLInterop": {Data: []byte("enabled\n")},
		}},
		Getenv: func(string) string { return "" },
		Run: func(name string, args ...string) ([]byte, error) {
			if name == "wslinfo" {
				return []byte(mode + "\n"), nil
			}
			return nil, errors.New("not installed")
		},
		WireGuard: r.k.WireGuard,
	}
}

// start runs the agent with cfgText as its config file, until stop or the
// end of the test; it returns once the agent is ready.
func (r *replay) start(cfgText string) {
	t := r.t
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "wslmtu.toml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a := &replayAgent{logs: &logbuf.Buffer{}, idle: make(chan chan<- loopView)}
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Config: cfg, ConfigPath: cfgPath,
			Host:   fix.Host{Sources: r.sources(), Links: r.k, Kernel: r.k, Store: fix.Store{Dir: r.dir}},
			Events: r.k,
			Logger: slog.New(slog.NewTextHandler(a.logs, nil)),
			Notify: func(string) {},
			Ready:  ready,
			idle:   a.idle,
		})
	}()
	var once sync.Once
	a.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("agent.Run returned %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("the agent did not stop within 5s of its context ending")
			}
		})
	}
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			t.Logf("agent log:\n%s", a.logs)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped before ready: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("agent not ready within 5s")
	}
	r.run = a
}

// broken says what of the checks fails now, "" when nothing does.
func (r *replay) broken() string {
	var out []string
	tun := r.k.MTU("tailscale0")
	need := tun + tunnel.WireGuardOverhead(tunnel.IPv4)
	var mark uint32
	if r.shape == marked {
		mark = detect.TailscaleMark.Value
	}
	switch p, err := r.k.Lookup(4, mark, fakekernel.TailscaledPort, peerLAN); {
	case err != nil:
		out = append(out, fmt.Sprintf("the tunnel's packets: %v", err))
	case p.Dev != "eth0" || p.MTU < need:
		out = append(out, fmt.Sprintf("the tunnel's packets (%d bytes) leave by rule %d through %s with mtu %d: the 55 kB transfers hang",
			need, p.Rule, p.Dev, p.MTU))
	case r.mode == detect.ModeMirrored && p.MTU > r.w:
		out = append(out, fmt.Sprintf("the tunnel's packets leave with mtu %d, above the Windows adapter's %d", p.MTU, r.w))
	}
	if r.mode != detect.ModeMirrored {
		switch p, err := r.k.Lookup(4, 0, 0, corpServer); {
		case err != nil:
			out = append(out, fmt.Sprintf("the corporate upload: %v", err))
		case p.MTU > r.w:
			out = append(out, fmt.Sprintf("ordinary packets leave by rule %d with mtu %d, above the Windows VPN's %d: the corporate upload hangs",
				p.Rule, p.MTU, r.w))
		}
	}
	if d := duplicates(r.k); d != "" {
		out = append(out, d)
	}
	return strings.Join(out, "; ")
}

// duplicates names rules that differ only in priority and routes that
// differ only in metric or mtu.
func duplicates(k *fakekernel.Kernel) string {
	var out []string
	rules, _ := k.Rules()
	seen := map[detect.Rule]int{}
	for _, r := range rules {
		key := r
		key.Priority = 0
		if p, ok := seen[key]; ok {
			out = append(out, fmt.Sprintf("rule %s twice (also at %d)", r, p))
		}
		seen[key] = r.Priority
	}
	routes, _ := k.Routes()
	type routeKey struct {
		family, table, link int
		dst, gw             string
	}
	have := map[routeKey]bool{}
	for _, r := range routes {
		key := routeKey{r.Family, r.Table, r.LinkIndex, r.Dst, r.Gw}
		if have[key] {
			out = append(out, fmt.Sprintf("route %s twice", r))
		}
		have[key] = true
	}
	return strings.Join(out, "; ")
}

// works waits until the agent has handled what the kernel reported (and
// the echoes of its own writes), then until the checks pass; it stops the
// test with what is broken otherwise.
func (r *replay) works(stage string) {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		waitIdle(r.t, r.run.idle)
		b := r.broken()
		if b == "" {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s (%s, tailscale0 %s): after 2s %s\nkernel:\n%s", stage, r.mode, r.shape, b, r.k.RoutingDump())
		}
		time.Sleep(time.Millisecond)
	}
}

// revertLeaves stops the agent (with revert_on_stop) and compares the kernel
// with before.
func (r *replay) revertLeaves(before string) {
	r.t.Helper()
	r.run.stop()
	if after := r.k.RoutingDump(); after != before {
		r.t.Errorf("after the agent's revert:\n%s\nbefore it started:\n%s", after, before)
	}
	if logs := r.run.logs.String(); strings.Contains(logs, "the fixes stay in place") || strings.Contains(logs, "revert on stop failed") {
		r.t.Errorf("the revert on stop was not logged as done:\n%s", logs)
	}
}

const revertOnStop = "revert_on_stop = true\n"

// A NAT push in both directions: the Windows VPN disconnects (1500),
// connects again (1280), reconnects below 1280 (1200, which takes eth0's
// IPv6 with it), and back at 1280.
func TestFakeReplayNATPush(t *testing.T) {
	for _, shape := range shapes {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			r := newReplay(t, detect.ModeNAT, shape, 1280, 1280)
			before := r.k.RoutingDump()
			r.start(revertOnStop)
			r.works("start")
			for _, w := range []int{1500, 1280, 1200, 1280} {
				r.w = w
				r.k.NATPush(w)
				r.works(fmt.Sprintf("WSL pushed %d", w))
			}
			r.revertLeaves(before)
		})
	}
}

// Mirrored: every Windows change refreshes eth0's addresses (IPv4 and
// IPv6), flushing the IPv4 routes silently, and WSL sends its routes again.
// The agent lowers the tunnel there and must keep it working through it.
func TestFakeReplayMirroredAddressRefresh(t *testing.T) {
	for _, shape := range shapes {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			r := newReplay(t, detect.ModeMirrored, shape, 1400, 1420)
			if err := r.k.AddAddr("eth0", "fd00:5:1::2/64"); err != nil {
				t.Fatal(err)
			}
			if err := r.k.AddDefaultRoute("eth0", "fd00:5:1::1"); err != nil {
				t.Fatal(err)
			}
			r.k.MirroredAddressRefresh("eth0") // WSL's own configuration: its shape
			before := r.k.RoutingDump()
			r.start(revertOnStop)
			r.works("start")
			for i := 1; i <= 2; i++ {
				r.k.MirroredAddressRefresh("eth0")
				r.works(fmt.Sprintf("address refresh %d", i))
			}
			if got := r.k.MTU("eth0"); got != 1400 {
				t.Errorf("eth0 %d in mirrored mode, want the adapter's 1400", got)
			}
			r.revertLeaves(before)
		})
	}
}

// Consomme: the host's address changes (the old one deleted, which flushes
// every IPv4 route through eth0 silently, table 5200's too) and back.
func TestFakeReplayConsommeAddressChange(t *testing.T) {
	for _, shape := range shapes {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			r := newReplay(t, detect.ModeConsomme, shape, 1280, 1280)
			before := r.k.RoutingDump()
			r.start(revertOnStop)
			r.works("start")
			for _, a := range []string{"172.28.0.3/20", "172.28.0.2/20"} {
				if err := r.k.ConsommeAddressChange("eth0", a); err != nil {
					t.Fatal(err)
				}
				r.works("address changed to " + a)
			}
			r.revertLeaves(before)
		})
	}
}

// Consomme: the host's gateway changes (.1 → .9) and back: the default
// route is deleted and one via the new gateway added.
func TestFakeReplayConsommeGatewayChange(t *testing.T) {
	for _, shape := range shapes {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			r := newReplay(t, detect.ModeConsomme, shape, 1280, 1280)
			before := r.k.RoutingDump()
			r.start(revertOnStop)
			r.works("start")
			for _, gw := range []string{"172.28.0.9", "172.28.0.1"} {
				if err := r.k.ConsommeGatewayChange("eth0", gw); err != nil {
					t.Fatal(err)
				}
				r.works("gateway changed to " + gw)
			}
			r.revertLeaves(before)
		})
	}
}

// A WSL restart: boot 1 has a Windows VPN at 1280 and a 1420 tunnel, so the
// agent raises eth0 to 1500 and records 1280; the VM stops with the agent
// in it (no revert). Boot 2 has no VPN: eth0 comes up at 1500, which is
// Windows' value now, not the agent's. Nothing may be capped at 1280, and
// the revert must leave eth0 at 1500.
func TestFakeReplayVMRestart(t *testing.T) {
	for _, shape := range shapes {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			r := newReplay(t, detect.ModeNAT, shape, 1280, 1420)
			r.start("") // the VM stops with the agent: nothing reverts
			r.works("boot 1")
			if got := r.k.MTU("eth0"); got != 1500 {
				t.Fatalf("boot 1: eth0 %d, want 1500 (tailscale0 1420 + 80)", got)
			}
			r.run.stop()

			r.k.VMRestart()
			r.w = 1500 // no VPN on Windows now; WSL's push finds eth0 at 1500 already
			r.k.NATPush(1500)
			r.k.AddLink(detect.Link{Name: "tailscale0", MTU: 1420, Kind: "tun", Up: true, IPv6Addrs: 1})
			r.tunnelShape()
			before := r.k.RoutingDump()
			r.start(revertOnStop)
			r.works("boot 2")
			main := detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}
			if rt, _ := r.k.Route(main); rt.MTU != 0 && rt.MTU < 1500 {
				t.Errorf("boot 2: the default route has mtu %d, but Windows chose 1500: every packet is capped for nothing", rt.MTU)
			}
			r.revertLeaves(before)
			if got := r.k.MTU("eth0"); got != 1500 {
				t.Errorf("boot 2: eth0 %d after the revert, want 1500: boot 1's record is no baseline for boot 2", got)
			}
		})
	}
}

// A default route that carries an mtu of its own before the agent starts
// (an earlier workaround, a network manager): at what Windows chose it is
// kept and the rules still go in; above it, it is capped like any other
// and revert puts it back.
func TestFakeReplayDefaultRouteWithItsOwnMTU(t *testing.T) {
	for _, own := range []int{1280, 1500} {
		for _, shape := range shapes {
			t.Run(fmt.Sprintf("%d/%s", own, shape), func(t *testing.T) {
				t.Parallel()
				r := newReplay(t, detect.ModeNAT, shape, 1280, 1280)
				r.k.ReplaceRoute(detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2, MTU: own})
				before := r.k.RoutingDump()
				r.start(revertOnStop)
				r.works(fmt.Sprintf("default route with mtu %d", own))
				r.revertLeaves(before)
			})
		}
	}
}
