package agent

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/netwatch"
	"github.com/wslmtu/wslmtu/internal/testenv/logbuf"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// A reset to the value a plan repaired is written back by the netlink
// reader, armed by the agent while it waits: the kernel holds the repair
// before the agent reads the event, and the agent then logs and counts it
// as its own, and its plan finds nothing to do.
func TestKnownResetIsWrittenByTheReader(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	// No IPv6 link-local addresses arriving later: an event the agent has
	// not read yet rightly stops the reader's write.
	ns.Run(t, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
	cfg := config.Default()
	cfg.AssumeWSL = true
	cfg.StateDir = t.TempDir()
	host := fix.HostAt(ns.Handle, detect.HostSources(), cfg.StateDir)
	ctx, cancel := context.WithCancel(context.Background())
	nsn := netnstest.NetNS(t, ns)
	log := &logbuf.Buffer{}
	a, events, err := setup(ctx, Options{Config: cfg, Host: host, Netns: nsn,
		Logger: slog.New(slog.NewTextHandler(log, nil)), Notify: func(string) {}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); a.firewall.stop(firewallStopWait); a.health.stop(healthStopWait); a.lock.Release() })
	var eth0 detect.Link
	for _, l := range a.kernel.links {
		if l.Name == "eth0" {
			eth0 = l
		}
	}
	if eth0.MTU != 1360 {
		t.Fatalf("eth0 %d after the start, want 1360", eth0.MTU)
	}
	// read serves one event as the loop does.
	read := func() netwatch.Event {
		t.Helper()
		select {
		case ev := <-events:
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			a.onEvent(ev)
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s")
		}
		return netwatch.Event{}
	}
	// Until the start's own echo is read, nothing is armed.
	for ev := read(); ev.Link == nil || ev.Link.Name != "eth0" || ev.Link.MTU != 1360; ev = read() {
	}
	a.drain(events)
	a.settle()

	// An event the agent reads before the reset (one it had not seen when
	// it armed) leaves the repair to the agent, so the reader's write is
	// waited for over a few resets.
	reset := eth0
	reset.MTU = 1280
	byReader := false
	for try := 0; try < 5 && !byReader; try++ {
		known := a.knownRepairs
		a.armRepairs()
		if err := host.Kernel.SetMTU(reset, 1280); err != nil {
			t.Fatal(err)
		}
		var ev netwatch.Event
		select {
		case ev = <-events:
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s of the reset")
		}
		if ev.Link == nil || ev.Link.Name != "eth0" || ev.Link.MTU != 1280 {
			t.Logf("try %d: an event before the reset: %+v", try+1, ev)
		} else if ev.Wrote == 1360 {
			byReader = true
			// Read before the agent has handled the event: the reader wrote it.
			if got := ns.MTU(t, "eth0"); got != 1360 {
				t.Fatalf("eth0 %d when the agent reads the reset, want the reader's 1360", got)
			}
		}
		a.disarmRepairs()
		a.onEvent(ev)
		for ns.MTU(t, "eth0") != 1360 || a.kernel.links[eth0.Index].MTU != 1360 {
			read() // the agent's own repair, or the echo
		}
		a.drain(events)
		a.settle()
		if byReader && a.knownRepairs != known+1 {
			t.Errorf("known repairs %d after the reader's write, want %d", a.knownRepairs, known+1)
		}
	}
	if !byReader {
		t.Fatal("no reset of five was written by the reader")
	}
	if n := strings.Count(log.String(), `msg=repaired`); n < 2 {
		t.Errorf("%d repairs logged, want the start's and the reader's:\n%s", n, log.String())
	}
	if got := ns.MTU(t, "eth0"); got != 1360 {
		t.Errorf("eth0 %d, want 1360", got)
	}
}
