package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
	"github.com/wslmtu/wslmtu/internal/testenv/firewalltest"
	"github.com/wslmtu/wslmtu/internal/testenv/logbuf"
)

// These tests run the agent's decisions against the in-memory kernel: no
// root, no namespace, every write recorded. The root tests in
// agent_linux_test.go and cmd/wslmtu run the same agent on real netlink.

type fakeAgent struct {
	k      *fakekernel.Kernel
	logs   *logbuf.Buffer
	dir    string // the state directory
	cfg    string // the config file
	cancel context.CancelFunc
	done   chan error
	resync chan struct{}
	idle   chan chan<- loopView
}

// startFake runs the agent on k with cfgText as its config file; opts
// adjusts the options. It returns once the agent is ready.
func startFake(t *testing.T, k *fakekernel.Kernel, cfgText string, opts ...func(*Options)) *fakeAgent {
	t.Helper()
	dir := t.TempDir()
	a := &fakeAgent{k: k, logs: &logbuf.Buffer{}, dir: filepath.Join(dir, "state"), cfg: filepath.Join(dir, "wslmtu.toml"),
		done: make(chan error, 1), resync: make(chan struct{}, 1), idle: make(chan chan<- loopView)}
	if cfgText != "" {
		if err := os.WriteFile(a.cfg, []byte(cfgText), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	o := Options{
		Config:       cfg,
		ConfigPath:   a.cfg,
		Host:         fix.Host{Sources: k.Sources("nat"), Links: k, Kernel: k, Store: fix.Store{Dir: a.dir}},
		Events:       k,
		Logger:       slog.New(slog.NewTextHandler(a.logs, nil)),
		Notify:       func(string) {},
		Ready:        ready,
		Resync:       a.resync,
		ConfigSettle: 20 * time.Millisecond,
		idle:         a.idle,
	}
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() { a.done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(5 * time.Second):
			t.Error("the agent did not stop within 5s of its context ending")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", a.logs.String())
		}
	})
	select {
	case <-ready:
	case err := <-a.done:
		t.Fatalf("agent stopped before ready: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("agent not ready within 5s")
	}
	return a
}

// eventually waits for cond, failing with what after 3 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 3s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// settled waits until the agent has handled every change the kernel
// reported before the call, and the echoes of its own writes for them, and
// returns what it counted then: "nothing happened" is a count, not a sleep.
func (a *fakeAgent) settled(t *testing.T) loopView {
	t.Helper()
	return waitIdle(t, a.idle)
}

func waitIdle(t *testing.T, idle chan chan<- loopView) loopView {
	t.Helper()
	reply := make(chan loopView, 1)
	select {
	case idle <- reply:
	case <-time.After(5 * time.Second):
		t.Fatal("the agent's loop did not take the request within 5s")
	}
	select {
	case v := <-reply:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("the agent did not become idle within 5s")
	}
	return loopView{}
}

func (a *fakeAgent) counters(t *testing.T) agentstatus.Counters {
	t.Helper()
	// The counters file is written at most once a second: read the live ones
	// through the status file after it settles.
	var st agentstatus.Status
	eventually(t, "the counters file", func() bool {
		var err error
		st, err = agentstatus.Read(a.dir)
		return err == nil && st.Known
	})
	return st.Counters
}

const scopedStart = `ip rule add 5190: from all fwmark 0x80000/0xff0000 lookup main suppress_prefixlength 0
ip rule add 5200: from all fwmark 0x80000/0xff0000 lookup 5200
route add default via 172.28.0.1 dev eth0 table 5200
route default via 172.28.0.1 dev eth0 mtu 1280
eth0 mtu 1360`

// The start applies the plan; a reset is repaired with one write; the echo
// of the agent's own write is no new event. The resets are to values no
// plan repaired before, so the plan writes, and the echo arrives after the
// reconcile: taken for a change, it would cost a second one.
func TestFakeAgentRepairsAndIgnoresItsOwnEcho(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "")
	if got := strings.Join(k.Writes(), "\n"); got != scopedStart {
		t.Fatalf("start wrote:\n%s\nwant:\n%s", got, scopedStart)
	}
	before := a.settled(t)
	for i := 1; i <= 3; i++ {
		k.Reset("eth0", 1290+i)
		v := a.settled(t)
		if got := k.MTU("eth0"); got != 1360 {
			t.Fatalf("reset %d: eth0 %d once the agent settled, want 1360", i, got)
		}
		// Each reset is one event and one reconcile; the echoes of its
		// repair (eth0's mtu, and the default route's, which follows what
		// Windows chose) are two more events, taken for the agent's own and
		// costing nothing.
		if ev, echo, rec := v.events-before.events, v.echoes-before.echoes, v.counters.Reconciles-before.counters.Reconciles; ev != 3*i || echo != i || rec != i {
			t.Errorf("after %d resets: %d events, %d own mtu echoes, %d reconciles; want %d, %d, %d", i, ev, echo, rec, 3*i, i, i)
		}
	}
	if got := mtuWrites(k.Writes(), "eth0"); !slices.Equal(got, []string{"eth0 mtu 1360", "eth0 mtu 1360", "eth0 mtu 1360"}) {
		t.Errorf("three resets wrote %q, want three eth0 writes", got)
	}
	if !strings.Contains(a.logs.String(), `msg=repaired interface=eth0 from=1291 to=1360`) {
		t.Errorf("no repair logged:\n%s", a.logs)
	}
}

// A burst of resets while the agent is busy is drained and repaired once.
func TestFakeAgentCoalescesABurst(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "")
	k.Writes()
	before := a.settled(t)
	// The agent reads the burst late, all at once (as when it is busy).
	release := k.HoldEvents()
	k.Reset("eth0", 1280)
	for i := 0; i < 200; i++ {
		k.Reset("eth0", 1280+i%2)
	}
	k.Reset("eth0", 1280)
	release()
	v := a.settled(t)
	if got := k.MTU("eth0"); got != 1360 {
		t.Errorf("eth0 %d after the burst, want 1360", got)
	}
	if v.counters.Reconciles > before.counters.Reconciles+2 {
		t.Errorf("a burst of 200 resets cost %d reconciles, want at most 2", v.counters.Reconciles-before.counters.Reconciles)
	}
	if got := k.Writes(); len(got) > 2 {
		t.Errorf("a burst of 200 resets cost %d writes, want at most 2: %q", len(got), got)
	}
}

// The latency logged is from the event to the write, even
// when the agent could not read the event at once.
func TestFakeAgentLatencyCountsFromTheEvent(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "")
	release := k.HoldEvents()
	k.Reset("eth0", 1280)
	time.Sleep(150 * time.Millisecond)
	release()
	r := a.settled(t).counters.LastRepair
	if r == nil || r.Interface != "eth0" || r.Cause != "eth0 mtu is 1280" {
		t.Fatalf("last repair %+v, want eth0's, caused by its reset", r)
	}
	if r.Latency < 150*time.Millisecond {
		t.Errorf("latency %v, want ≥ 150ms: the event waited that long", r.Latency)
	}
	if !strings.Contains(a.logs.String(), `cause="eth0 mtu is 1280" latency=`+r.Latency.Round(time.Microsecond).String()) {
		t.Errorf("the log does not say the counters' latency %v:\n%s", r.Latency, a.logs)
	}
}

// Something that keeps resetting is repaired at a bounded rate, and said so.
func TestFakeAgentLimitsAFight(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "")
	k.Writes()
	before := a.settled(t)
	start := time.Now()
	for time.Since(start) < time.Second {
		k.Reset("eth0", 1280)
		time.Sleep(500 * time.Microsecond)
	}
	eventually(t, "eth0 repaired after the fight", func() bool { return k.MTU("eth0") == 1360 })
	writes := len(k.Writes())
	if writes > repairBurst+2*repairsPerSecond {
		t.Errorf("%d repairs in a 1s fight, want at most %d", writes, repairBurst+2*repairsPerSecond)
	}
	// A held plan waits for the limiter's next token, not less: about 1.4
	// reconciles a repair here (some find the reset not read yet), and
	// retrying every millisecond would cost four times that.
	v := a.settled(t)
	if n := v.counters.Reconciles - before.counters.Reconciles; n > 2*writes {
		t.Errorf("%d reconciles for %d repairs in a 1s fight: the held plan was retried before the limiter allowed it", n, writes)
	}
	if !strings.Contains(a.logs.String(), "something keeps resetting the mtu") {
		t.Errorf("the fight was not logged:\n%s", a.logs)
	}
}

// An outer interface renamed away from eth* is still
// followed (by its index).
func TestFakeAgentFollowsARenamedOuterInterface(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "")
	k.Rename("eth0", "wan0")
	a.settled(t)
	k.Writes()
	k.Reset("wan0", 1280)
	eventually(t, "wan0 repaired", func() bool { return k.MTU("wan0") == 1360 })
}

// WSL rewrites the default route on a Windows network change: a default
// route without the tunnel scope's MTU is a reset like any other.
func TestFakeAgentRepairsARewrittenDefaultRoute(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	startFake(t, k, "")
	k.Writes()
	main := detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}
	k.ReplaceRoute(main)
	eventually(t, "the route mtu repaired", func() bool { r, _ := k.Route(main); return r.MTU == 1280 })
	if got := k.Writes(); len(got) != 1 || got[0] != "route default via 172.28.0.1 dev eth0 mtu 1280" {
		t.Errorf("writes %q", got)
	}
}

// A tunnel that reconnects on a new listen port gets its rules updated,
// and nothing piles up.
func TestFakeAgentFollowsATunnelOnANewPort(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1420)
	k.Rename("tailscale0", "wg0")
	k.SetWireGuard("wg0", detect.WireGuardDevice{ListenPort: 51820})
	startFake(t, k, "")
	k.Writes()
	k.SetWireGuard("wg0", detect.WireGuardDevice{ListenPort: 40000})
	k.DeleteLink("wg0")
	k.AddLink(detect.Link{Name: "wg0", MTU: 1420, Kind: "wireguard", Up: true})
	eventually(t, "the rules moved to port 40000", func() bool {
		rules, _ := k.Rules()
		n40000, n51820 := 0, 0
		for _, r := range rules {
			switch r.Sport {
			case 40000:
				n40000++
			case 51820:
				n51820++
			}
		}
		return n40000 == 2 && n51820 == 0
	})
}

// A config rewritten in place (truncated first) is never
// acted on half-written; a missing file keeps the config in force; changing
// away from a strategy undoes what the old one did.
func TestFakeAgentReloadsOnlySettledConfigs(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	off := "mtu_strategy = \"off\"\n"
	a := startFake(t, k, off)
	if got := k.MTU("eth0"); got != 1280 {
		t.Fatalf("mtu_strategy off raised eth0 to %d", got)
	}
	// The same content rewritten in place, many times.
	for i := 0; i < 100; i++ {
		f, err := os.OpenFile(a.cfg, os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond)
		f.WriteString(off)
		f.Close()
	}
	last := stampOf(a.cfg)
	eventually(t, "the last rewrite read", func() bool { return a.settled(t).configRead == last })
	if got := k.MTU("eth0"); got != 1280 {
		t.Fatalf("rewriting the same off config raised eth0 to %d:\n%s", got, a.logs)
	}
	// Deleted: the config in force stays, and the log says so.
	os.Remove(a.cfg)
	eventually(t, "the missing file logged", func() bool {
		return strings.Contains(a.logs.String(), "the config file is missing; keeping the config in force")
	})
	if got := k.MTU("eth0"); got != 1280 {
		t.Fatalf("a deleted config raised eth0 to %d", got)
	}
	// raise-outer, then off again: eth0 back to what WSL gave it.
	os.WriteFile(a.cfg, []byte("mtu_strategy = \"raise-outer\"\nouter_scope = \"all\"\n"), 0o644)
	eventually(t, "raise-outer applied", func() bool { return k.MTU("eth0") == 1360 })
	os.WriteFile(a.cfg, []byte(off), 0o644)
	eventually(t, "off undid the raise", func() bool { return k.MTU("eth0") == 1280 })
	if strings.Contains(a.logs.String(), `level=ERROR`) {
		t.Errorf("errors logged:\n%s", a.logs)
	}
}

// An invalid config is logged with file:line and changes nothing.
func TestFakeAgentKeepsTheConfigOnABadEdit(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "mtu_strategy = \"off\"\n")
	os.WriteFile(a.cfg, []byte("mtu_strategy = \"off\"\ntunnels = [\"*\"]\n"), 0o644)
	eventually(t, "the bad config logged", func() bool {
		return strings.Contains(a.logs.String(), `invalid config; keeping the previous one" error="`+a.cfg+`:2: tunnels: \"*\" selects lo`)
	})
	if got := k.MTU("eth0"); got != 1280 {
		t.Errorf("eth0 %d", got)
	}
}

// A reloaded state_dir is refused with a clear log line,
// and the agent keeps its record where it was.
func TestFakeAgentRefusesToMoveItsStateDir(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "")
	other := filepath.Join(t.TempDir(), "elsewhere")
	os.WriteFile(a.cfg, []byte("state_dir = \""+other+"\"\nmtu_strategy = \"raise-outer\"\n"), 0o644)
	eventually(t, "the refusal logged", func() bool {
		return strings.Contains(a.logs.String(), "state_dir cannot change while the agent runs")
	})
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the agent wrote to the new state_dir: %v", err)
	}
	k.Reset("eth0", 1280)
	eventually(t, "still repairing", func() bool { return k.MTU("eth0") == 1360 })
}

// A failed subscription is followed by new attempts with a growing delay,
// a full resync, and repairs as before.
func TestFakeAgentResubscribesWithBackoff(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "")
	k.FailSubscribe(4)
	before := k.Subscribes()
	k.Reset("eth0", 1300) // changed while the agent does not listen
	k.Overflow()
	eventually(t, "subscribed again", func() bool { return k.Subscribes() == before+5 })
	eventually(t, "the resync repaired eth0", func() bool { return k.MTU("eth0") == 1360 })
	k.Reset("eth0", 1280)
	eventually(t, "repairs after resubscribing", func() bool { return k.MTU("eth0") == 1360 })
	if c := a.counters(t); c.Resubscribe < 1 {
		t.Errorf("counters %+v", c)
	}
	logs := a.logs.String()
	if !strings.Contains(logs, "netlink subscription failed; subscribing again") {
		t.Errorf("the overflow was not logged:\n%s", logs)
	}
	// The delay doubles: 1, 2, 4 then 8 ms before the fifth attempt.
	for _, d := range []string{"1ms", "2ms", "4ms", "8ms"} {
		if !strings.Contains(logs, "subscribing again failed") || !strings.Contains(logs, "retry_in="+d) {
			t.Errorf("no failed attempt logged with retry_in=%s:\n%s", d, logs)
		}
	}
	if strings.Contains(logs, "reading the kernel's view failed") || strings.Contains(logs, "level=ERROR msg=\"netlink subscription failed") {
		t.Errorf("the resync logged a failure it did not have:\n%s", logs)
	}
}

// SIGTERM while subscribing keeps failing: the agent stops at once.
func TestFakeAgentStopsWhileResubscribing(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "")
	before := k.Subscribes()
	k.FailSubscribe(1 << 30)
	k.Overflow()
	eventually(t, "subscribing again fails twice", func() bool { return k.Subscribes() >= before+2 })
	start := time.Now()
	a.cancel()
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup
	case <-time.After(time.Second):
		t.Fatal("the agent did not stop within 1s while resubscribing")
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("stopping took %v", took)
	}
}

// The MTU repair never waits for the firewall. The
// firewall here takes two seconds to open; resets are repaired meanwhile.
func TestFakeAgentMTURepairNeverWaitsForTheFirewall(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	release := make(chan struct{})
	a := startFake(t, k, "mss_clamp = true\n", func(o *Options) {
		o.Host.Firewall = func(string) (firewall.Runner, error) {
			<-release // a stuck iptables
			return nil, firewall.Unavailable("test")
		}
	})
	t.Cleanup(func() { close(release) }) // before the agent's cleanup waits for it
	for i := 0; i < 5; i++ {
		k.Reset("eth0", 1280)
		start := time.Now()
		eventually(t, "eth0 repaired while the firewall is stuck", func() bool { return k.MTU("eth0") == 1360 })
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("repair %d took %v behind the firewall", i, took)
		}
	}
	_ = a
}

// A pattern that selects the outer interface stops the
// agent at start as bad input, changing nothing.
func TestFakeAgentRefusesAPatternThatSelectsTheOuterInterface(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Tunnels = []string{"eth*"}
	err := Run(t.Context(), Options{Config: cfg, Host: fix.Host{Sources: k.Sources("nat"), Links: k, Kernel: k, Store: fix.Store{Dir: dir}},
		Events: k, Logger: slog.New(slog.NewTextHandler(&logbuf.Buffer{}, nil)), Notify: func(string) {}})
	var pe *detect.PatternError
	if !errors.As(err, &pe) || pe.Interface != "eth0" {
		t.Fatalf("Run = %v, want the pattern refused", err)
	}
	if w := k.Writes(); len(w) != 0 {
		t.Errorf("wrote %q", w)
	}
}

// metrics_file: the agent writes its counters and the MTUs in Prometheus'
// text format, parseable by expfmt, with the values the counters show, and
// leaves the file alone while nothing changes.
func TestFakeAgentWritesMetrics(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	prom := filepath.Join(t.TempDir(), "wslmtu.prom")
	a := startFake(t, k, "metrics_file = \""+prom+"\"\n", func(o *Options) { o.Version = "1.2.3-test" })
	k.Reset("eth0", 1280)
	eventually(t, "eth0 repaired", func() bool { return k.MTU("eth0") == 1360 })
	var families map[string]*dto.MetricFamily
	eventually(t, "the metrics file shows the repair", func() bool {
		data, err := os.ReadFile(prom)
		if err != nil {
			return false
		}
		p := expfmt.NewTextParser(pmodel.LegacyValidation)
		families, err = p.TextToMetricFamilies(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("the metrics file does not parse: %v\n%s", err, data)
		}
		f := families["wslmtu_repairs_total"]
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "eth0" && m.GetCounter().GetValue() == 2 {
					return true
				}
			}
		}
		return false
	})
	if c := a.counters(t); c.RepairsBy["eth0"] != 2 {
		t.Errorf("counters say %d eth0 repairs", c.RepairsBy["eth0"])
	}
	for _, name := range []string{"wslmtu_build_info", "wslmtu_healthy", "wslmtu_outer_mtu_bytes", "wslmtu_tunnel_mtu_bytes"} {
		if families[name] == nil {
			t.Errorf("no %s in the metrics file", name)
		}
	}
	if got := families["wslmtu_outer_mtu_bytes"].GetMetric()[0].GetGauge().GetValue(); got != 1360 {
		t.Errorf("outer mtu %v, want 1360", got)
	}
	before, _ := os.Stat(prom)
	time.Sleep(1500 * time.Millisecond)
	if after, _ := os.Stat(prom); !after.ModTime().Equal(before.ModTime()) {
		t.Error("the metrics file was rewritten while nothing changed")
	}
}

// With systemd's watchdog on (WATCHDOG_USEC), the loop pings it at half the
// interval, well before systemd gives up on it; without it, never.
func TestFakeAgentPingsTheWatchdog(t *testing.T) {
	const interval = 200 * time.Millisecond
	for _, on := range []bool{true, false} {
		if on {
			t.Setenv("WATCHDOG_USEC", fmt.Sprint(interval.Microseconds()))
		} else {
			t.Setenv("WATCHDOG_USEC", "")
		}
		var mu sync.Mutex
		var pings []time.Time
		a := startFake(t, fakekernel.NewWSL(1280, 1280), "", func(o *Options) {
			o.Notify = func(state string) {
				mu.Lock()
				defer mu.Unlock()
				if state == "WATCHDOG=1" {
					pings = append(pings, time.Now())
				}
			}
		})
		if on {
			eventually(t, "three watchdog pings", func() bool { mu.Lock(); defer mu.Unlock(); return len(pings) >= 3 })
			mu.Lock()
			if gap := pings[2].Sub(pings[0]); gap >= 2*interval {
				t.Errorf("three pings took %v: slower than one per watchdog interval (%v)", gap, interval)
			}
			mu.Unlock()
		} else {
			a.settled(t)
			mu.Lock()
			if len(pings) != 0 {
				t.Errorf("%d watchdog pings without WATCHDOG_USEC", len(pings))
			}
			mu.Unlock()
		}
		a.cancel()
	}
}

// The MSS rules follow the config on the fake firewall: turned on by a
// reload they are made, turned off they go; not WSL, the firewall is never
// touched.
func TestFakeAgentFollowsMSSClampingOnReload(t *testing.T) {
	fw := firewalltest.New(firewall.NFT)
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "mss_clamp = false\n", func(o *Options) { o.Host.Firewall = fw.Open })
	ours := func() bool { return strings.Contains(fw.All(), "WSLMTU-IN") }
	os.WriteFile(a.cfg, []byte("mss_clamp = true\n"), 0o644)
	eventually(t, "the MSS chains made by a reload", ours)
	os.WriteFile(a.cfg, []byte("mss_clamp = false\n"), 0o644)
	eventually(t, "the MSS chains removed by a reload", func() bool { return !ours() })

	fw = firewalltest.New(firewall.NFT)
	clamp := config.Default()
	clamp.MSSClamp = true
	s := startStepped(t, fakekernel.NewWSL(1280, 1280), clamp, func(o *Options) {
		o.Host.Sources.Root = fstest.MapFS{"proc/sys/kernel/osrelease": {Data: []byte("6.1.0-13-amd64\n")}}
		o.Host.Firewall = fw.Open
	})
	if s.a.mssKey != "" {
		t.Errorf("not WSL, and the firewall was handed %q", s.a.mssKey)
	}
}

// The metrics file is written also when nobody wants the status text (no
// Notify, no systemd).
func TestFakeAgentWritesMetricsWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	prom := filepath.Join(t.TempDir(), "wslmtu.prom")
	startFake(t, fakekernel.NewWSL(1280, 1280), "metrics_file = \""+prom+"\"\n", func(o *Options) { o.Notify = nil })
	eventually(t, "the metrics file", func() bool { _, err := os.Stat(prom); return err == nil })
}

// The command line's flags win over a reloaded config file: the overlay is
// applied to what was read.
func TestFakeAgentFlagsWinAfterAReload(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	off := func(c config.Config) (config.Config, error) {
		c.MTUStrategy = config.StrategyOff
		return c, c.Validate()
	}
	a := startFake(t, k, "mtu_strategy = \"off\"\n", func(o *Options) { o.Overlay = off })
	os.WriteFile(a.cfg, []byte("mtu_strategy = \"raise-outer\"\nouter_scope = \"all\"\n"), 0o644)
	stamp := stampOf(a.cfg)
	eventually(t, "the new file read", func() bool { return a.settled(t).configRead == stamp })
	if got := k.MTU("eth0"); got != 1280 {
		t.Errorf("--mtu-strategy off lost to the reloaded file: eth0 %d", got)
	}
}
