package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/netwatch"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
	"github.com/wslmtu/wslmtu/internal/testenv/logbuf"
)

// stepped is the agent driven by hand on the fake kernel: the test serves
// the queued events, fires the timers that are due and reconciles, on a
// clock it steps. What a fight does over seconds is then checked in
// microseconds, and "nothing happened" is a counter, never a sleep.
type stepped struct {
	t      *testing.T
	a      *agent
	k      *fakekernel.Kernel
	events <-chan netwatch.Event
	logs   *logbuf.Buffer
	clock  time.Time
}

func startStepped(t *testing.T, k *fakekernel.Kernel, cfg config.Config, opts ...func(*Options)) *stepped {
	t.Helper()
	s := &stepped{t: t, k: k, logs: &logbuf.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	dir := filepath.Join(t.TempDir(), "state")
	cfg.StateDir = dir
	o := Options{Config: cfg,
		Host:   fix.Host{Sources: k.Sources("nat"), Links: k, Kernel: k, Store: fix.Store{Dir: dir}},
		Events: k, Logger: slog.New(slog.NewTextHandler(s.logs, nil)), Notify: func(string) {}}
	for _, f := range opts {
		f(&o)
	}
	a, events, err := setup(ctx, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		a.firewall.stop(firewallStopWait)
		a.health.stop(healthStopWait)
		a.lock.Release()
		if t.Failed() {
			t.Logf("agent log:\n%s", s.logs)
		}
	})
	s.a, s.events = a, events
	s.clock = time.Now()
	a.now = func() time.Time { return s.clock }
	s.step(0) // the echoes of the start's writes
	return s
}

// step moves the clock on by d and does what one turn of the agent's loop
// does with everything queued.
func (s *stepped) step(d time.Duration) {
	s.t.Helper()
	s.clock = s.clock.Add(d)
	if !s.a.drain(s.events) {
		s.t.Fatal("the subscription ended")
	}
	if !s.a.holdUntil.IsZero() && !s.clock.Before(s.a.holdUntil) {
		s.a.retryDue()
	}
	s.a.calmFights(s.clock)
	s.a.settle()
}

// lines counts the log lines holding all of the parts.
func (s *stepped) lines(parts ...string) int {
	n := 0
	for _, l := range strings.Split(s.logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}

var mainDefault = detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}

// tableCopy is the scope's copy of the main default route in table 5200.
var tableCopy = detect.Route{Family: 4, Table: 5200, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}

// The echo of the agent's own write is no new event: a reset costs one
// reconcile, not two. Without the echo checks (ownWrites for an MTU, the
// model's "nothing changed" for a route) the echo of a write the plan made
// makes a second reconcile, which writes nothing, so only counting
// reconciles shows it. (A known reset is written back as its event is
// read, and its echo is served in the same turn.)
func TestFakeAgentEchoesCostNoReconcile(t *testing.T) {
	s := startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default())
	s.k.Writes()
	for _, c := range []struct {
		name  string
		reset func()
		want  string
	}{
		{"eth0 mtu", func() { s.k.Reset("eth0", 1280) }, "eth0 mtu 1360"},
		{"default route mtu", func() { s.k.ReplaceRoute(mainDefault) }, "route default via 172.28.0.1 dev eth0 mtu 1280"},
		{"eth0 mtu at a new value", func() { s.k.Reset("eth0", 1300) }, "route default via 172.28.0.1 dev eth0 mtu 1300; eth0 mtu 1360"},
	} {
		before := s.a.counters.Reconciles
		c.reset()
		s.step(time.Millisecond) // the reset: repaired
		if got := strings.Join(s.k.Writes(), "; "); got != c.want {
			t.Fatalf("%s: the reset wrote %q, want %q", c.name, got, c.want)
		}
		s.step(time.Millisecond) // the echo
		s.step(time.Millisecond)
		if got := s.a.counters.Reconciles - before; got != 1 {
			t.Errorf("%s: a reset cost %d reconciles, want 1: the echo of the repair was taken for a change", c.name, got)
		}
	}
}

// 1,403 rewrites of the default route in 3 s (WSL, a network manager) gave
// 1,403 INFO lines and no fight warning. Every kind of repair has the one
// limiter: a burst is repaired and logged, then one warning, repairs at a
// bounded rate without a line each, the fight in the counters while it
// stands, and one line when it ends.
func TestFakeAgentLimitsEveryKindOfFight(t *testing.T) {
	rule := detect.Rule{Family: 4, Priority: 5200, Mark: 0x80000, Mask: 0xff0000, Table: 5200, SuppressPrefixlen: -1}
	for _, c := range []struct {
		name, warning, fighting string
		reset                   func(k *fakekernel.Kernel)
		undone                  func(k *fakekernel.Kernel) bool
	}{
		{"the default route rewritten without its mtu", "something keeps changing a route wslmtu keeps",
			"route default via 172.28.0.1 dev eth0",
			func(k *fakekernel.Kernel) { k.ReplaceRoute(mainDefault) },
			func(k *fakekernel.Kernel) bool { r, _ := k.Route(mainDefault); return r.MTU != 1280 }},
		{"the table's route deleted", "something keeps changing a route wslmtu keeps",
			"route default via 172.28.0.1 dev eth0 table 5200",
			func(k *fakekernel.Kernel) { k.DeleteRoute(tableCopy) },
			func(k *fakekernel.Kernel) bool { _, ok := k.Route(tableCopy); return !ok }},
		{"a rule deleted", "something keeps changing a policy rule wslmtu keeps",
			"ip rule 5200: from all fwmark 0x80000/0xff0000 lookup 5200",
			func(k *fakekernel.Kernel) { k.DeleteRule(rule) },
			func(k *fakekernel.Kernel) bool { rules, _ := k.Rules(); return !containsRule(rules, rule) }},
		{"eth0's mtu reset", "something keeps resetting the mtu", "eth0 mtu",
			func(k *fakekernel.Kernel) { k.Reset("eth0", 1280) },
			func(k *fakekernel.Kernel) bool { return k.MTU("eth0") != 1360 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default())
			s.k.Writes()
			const resets = 1403
			pace := 3 * time.Second / resets
			standing := false
			for i := 0; i < resets; i++ {
				if !c.undone(s.k) {
					c.reset(s.k)
				}
				s.step(pace)
				standing = standing || strings.Join(s.a.counters.Fighting, ",") == c.fighting
			}
			repairs := 0
			for _, w := range s.k.Writes() {
				if !strings.Contains(w, " del ") { // the fake records the test's deletions too
					repairs++
				}
			}
			for i := 0; i < 10; i++ { // quiet for 5 s
				s.step(calmCheck)
			}
			if c.undone(s.k) {
				t.Errorf("not repaired after the fight")
			}
			if max := repairBurst + 3*repairsPerSecond + 10; repairs > max {
				t.Errorf("%d repairs in 3 s, want at most %d", repairs, max)
			}
			if n := s.lines("msg=repaired"); n > repairBurst+repairsPerSecond {
				t.Errorf("%d repairs logged, want at most %d (the rest said by the fight's warning)", n, repairBurst+repairsPerSecond)
			}
			if n := s.lines("level=WARN", c.warning); n != 1 {
				t.Errorf("the fight was warned of %d times, want once", n)
			}
			if n := s.lines("the fight is over"); n != 1 {
				t.Errorf("the fight's end was logged %d times, want once", n)
			}
			if m := regexp.MustCompile(`the fight is over.* resets=(\d+) `).FindStringSubmatch(s.logs.String()); m == nil || len(m[1]) < 3 {
				t.Errorf("the fight's end does not count its hundreds of resets: %q", m)
			}
			if !standing {
				t.Errorf("the counters never listed the fight %q", c.fighting)
			}
			if got := s.a.counters.Fighting; len(got) != 0 || s.a.counters.Fights != 1 {
				t.Errorf("after the fight: fighting %q, fights %d; want none standing, 1 in all", got, s.a.counters.Fights)
			}
		})
	}
}

func containsRule(rules []detect.Rule, r detect.Rule) bool {
	for _, have := range rules {
		if have == r {
			return true
		}
	}
	return false
}

// 200 tunnels whose packets cannot be recognised, appearing one by one,
// gave 19,185 log lines: every warning again whenever the list changed.
// Each is logged once when it appears and once when it clears, and the
// counters (what status shows) list the standing ones.
func TestFakeAgentLogsEachWarningOnce(t *testing.T) {
	s := startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default())
	const tunnels = 200
	for i := 0; i < tunnels; i++ {
		s.k.AddLink(detect.Link{Name: fmt.Sprintf("wg%d", i), MTU: 1420, Kind: "wireguard", Up: true})
		s.step(time.Millisecond)
	}
	for i := 0; i < tunnels; i++ {
		if n := s.lines("level=WARN", fmt.Sprintf("wg%d's own packets cannot be recognised", i)); n != 1 {
			t.Fatalf("wg%d's warning logged %d times, want once", i, n)
		}
	}
	if n := len(s.a.counters.Warnings); n != tunnels {
		t.Errorf("%d standing warnings in the counters, want %d", n, tunnels)
	}
	for i := 0; i < tunnels; i++ {
		s.k.DeleteLink(fmt.Sprintf("wg%d", i))
		s.step(time.Millisecond)
	}
	for i := 0; i < tunnels; i++ {
		if n := s.lines("warning cleared", fmt.Sprintf("wg%d's own packets cannot be recognised", i)); n != 1 {
			t.Fatalf("wg%d's warning cleared %d times, want once", i, n)
		}
	}
	if n := s.lines("level=WARN"); n != tunnels {
		t.Errorf("%d warnings logged in all, want %d", n, tunnels)
	}
	if n := len(s.a.counters.Warnings); n != 0 {
		t.Errorf("%d standing warnings after the tunnels went, want none", n)
	}
}

// Deleting eth0's address (WSL in mirrored and consomme modes) flushes
// every IPv4 route through eth0, table 5200 included, without a route
// event; WSL then adds its default route again, without the mtu. Both the
// table and the mtu must come back.
func TestFakeAgentRestoresTheScopeAfterASilentFlush(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	_ = k.AddAddr("eth0", "172.28.0.2/20") // unless NewWSL gave eth0 its address already
	s := startStepped(t, k, config.Default())
	if _, ok := k.Route(tableCopy); !ok {
		t.Fatal("no table 5200 route after start")
	}
	k.Writes()
	before := s.a.counters.Reconciles
	if err := k.DeleteAddr("eth0", "172.28.0.2/20"); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.Route(tableCopy); ok {
		t.Fatal("the fake did not flush table 5200")
	}
	s.step(time.Millisecond)
	if err := k.AddAddr("eth0", "172.28.0.2/20"); err != nil {
		t.Fatal(err)
	}
	s.step(time.Millisecond)
	k.ReplaceRoute(mainDefault) // WSL: the default route again, no metrics
	s.step(time.Millisecond)
	got, _ := k.Route(mainDefault)
	if _, ok := k.Route(tableCopy); !ok || got.MTU != 1280 {
		t.Errorf("after the flush: table 5200 route %v, default route mtu %d; want the route back and mtu 1280 (writes %q)",
			ok, got.MTU, k.Writes())
	}
	if n := s.a.counters.Reconciles - before; n > 3 {
		t.Errorf("%d reconciles for three events", n)
	}
	// The same when the NIC disappears and comes back as a new link
	// (mirrored mode hot-plugs them), with the same name.
	k.Writes()
	k.DeleteLink("eth0")
	s.step(time.Millisecond)
	eth := k.AddLink(detect.Link{Name: "eth0", MTU: 1280, Kind: "device", Up: true})
	if err := k.AddAddr("eth0", "172.28.0.2/20"); err != nil {
		t.Fatal(err)
	}
	newDefault := mainDefault
	newDefault.LinkIndex = eth.Index
	k.ReplaceRoute(newDefault)
	s.step(time.Millisecond)
	newCopy := tableCopy
	newCopy.LinkIndex = eth.Index
	got, _ = k.Route(newDefault)
	if _, ok := k.Route(newCopy); !ok || got.MTU != 1280 || k.MTU("eth0") != 1360 {
		t.Errorf("after eth0 came back: table 5200 route %v, default route mtu %d, eth0 %d (writes %q)",
			ok, got.MTU, k.MTU("eth0"), k.Writes())
	}
}

// Options left zero take the documented defaults; a caller's Notify is
// what asks for the health check's status text.
func TestSteppedDefaults(t *testing.T) {
	s := startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default())
	if s.a.ConfigSettle != configSettle || s.a.MSSResyncInterval != mssResyncInterval {
		t.Errorf("config settle %v, MSS resync %v; want %v, %v", s.a.ConfigSettle, s.a.MSSResyncInterval, configSettle, mssResyncInterval)
	}
	if !s.a.statusWanted {
		t.Error("a caller's Notify does not get the status text")
	}
	t.Setenv("NOTIFY_SOCKET", "")
	s = startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default(), func(o *Options) { o.Notify = nil })
	if s.a.statusWanted {
		t.Error("the status text is made with no Notify and no systemd to send it to")
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "notify")) // nobody listens: sd_notify's send fails quietly
	s = startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default(), func(o *Options) { o.Notify = nil })
	if !s.a.statusWanted {
		t.Error("systemd (NOTIFY_SOCKET) does not get the status text")
	}
}

// Not WSL (and no assume_wsl): the start says once why nothing is applied,
// and the reconciles after it do not say it again.
func TestSteppedRefusalToldOnceAtStart(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	s := startStepped(t, k, config.Default(), func(o *Options) {
		o.Host.Sources.Root = fstest.MapFS{"proc/sys/kernel/osrelease": {Data: []byte("6.1.0-13-amd64\n")}}
	})
	k.Reset("eth0", 1300)
	s.step(time.Millisecond)
	k.Reset("eth0", 1280)
	s.step(time.Millisecond)
	if n := s.lines("level=WARN", "not applying: this is not WSL"); n != 1 {
		t.Errorf("the refusal was told %d times, want once, at the start", n)
	}
	if w := k.Writes(); len(w) != 0 {
		t.Errorf("not WSL, and wrote %q", w)
	}
}

// The start writes the status file even when it changes nothing; a repair
// after a quiet second writes it at once, and one within a second of the
// last write waits for the flush (a fight costs no disk write per reset).
func TestSteppedCountersSavedAtStartAndAfterRepairs(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	cfg := config.Default()
	cfg.MTUStrategy = config.StrategyOff
	s := startStepped(t, k, cfg)
	path := filepath.Join(s.a.Host.Store.Dir, agentstatus.FileName)
	if st, err := agentstatus.Read(s.a.Host.Store.Dir); err != nil || !st.Known {
		t.Fatalf("no status file after a start that changed nothing: %v", err)
	}
	s.a.cfg.MTUStrategy = config.RaiseOuter
	s.a.countersSaved = time.Now().Add(-2 * time.Second)
	before := stampOf(path)
	s.a.queue(cause{at: time.Now(), kind: causeReload})
	s.step(time.Millisecond)
	if st, _ := agentstatus.Read(s.a.Host.Store.Dir); st.Repairs == 0 || stampOf(path) == before {
		t.Fatalf("a repair a quiet second after the last save was not saved at once (repairs in the file: %d)", st.Repairs)
	}
	saved := stampOf(path)
	k.Reset("eth0", 1300)
	s.step(time.Millisecond)
	if stampOf(path) != saved {
		t.Error("a repair within a second of the last save was saved at once")
	}
}

// The fights are looked at while there are any, and the timer is not armed
// for nothing.
func TestSteppedCalmArmedOnlyWithFights(t *testing.T) {
	s := startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default())
	if len(s.a.fights) == 0 || !s.a.calmArmed {
		t.Fatalf("after the start's repairs: %d fights remembered, calm armed %v; want some and armed", len(s.a.fights), s.a.calmArmed)
	}
	clear(s.a.fights)
	s.a.calmArmed = false
	s.a.armCalm()
	if s.a.calmArmed {
		t.Error("calm armed with no fight remembered")
	}
}

// A round of path checks is taken into the counters and saved like a
// repair; an empty round after empty ones is no change and saves nothing.
func TestSteppedPathsFoundSavesOnlyAChange(t *testing.T) {
	s := startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default())
	select { // the start's round (verify is empty): no other comes
	case <-s.a.verify.ready():
	case <-time.After(5 * time.Second):
		t.Fatal("no round after the start")
	}
	path := filepath.Join(s.a.Host.Store.Dir, agentstatus.FileName)
	s.a.countersSaved = time.Now().Add(-2 * time.Second)
	before := stampOf(path)
	s.a.verify.deliver(nil)
	s.a.pathsFound()
	if stampOf(path) != before {
		t.Error("an empty round after empty ones rewrote the status file")
	}
	s.a.verify.deliver([]fix.PathCheck{{PathNeed: fix.PathNeed{Host: "192.0.2.1"}, Verdict: fix.PathOK}})
	s.a.pathsFound()
	if st, _ := agentstatus.Read(s.a.Host.Store.Dir); len(st.Paths) != 1 || st.Paths[0].Host != "192.0.2.1" {
		t.Errorf("the round's paths are not in the status file: %+v", st.Paths)
	}
}
