package agent

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/netwatch"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// benchAgent is the agent set up on a WSL-shaped namespace, eth0 repaired,
// without its health worker (its fresh reads are not the repair's cost).
func benchAgent(b *testing.B) (*agent, *netnstest.NS, fix.Host, detect.Link) {
	ns := netnstest.NewWSL(b, 1280, 1280)
	cfg := config.Default()
	cfg.AssumeWSL = true
	cfg.StateDir = b.TempDir()
	host := fix.HostAt(ns.Handle, detect.HostSources(), cfg.StateDir)
	ctx, cancel := context.WithCancel(context.Background())
	nsn := netnstest.NetNS(b, ns)
	a, _, err := setup(ctx, Options{Config: cfg, Host: host, Netns: nsn,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Notify: func(string) {}})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); a.firewall.stop(firewallStopWait); a.lock.Release() })
	a.health.stop(healthStopWait)
	var eth0 detect.Link
	for _, l := range a.kernel.links {
		if l.Name == "eth0" {
			eth0 = l
		}
	}
	return a, ns, host, eth0
}

// BenchmarkReconcile is the agent's own work for one repair from its model:
// lock, record check, derive, plan, write the MTU, log. The rest of the
// event-to-repair latency is the machine waking the agent (see
// TestRepairHarness in cmd/wslmtu, which measures it against a floor).
// Run: go test ./agent -run '^$' -bench 'Reconcile|KnownRepair'
func BenchmarkReconcile(b *testing.B) {
	a, ns, host, eth0 := benchAgent(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		eth0.MTU = 1280
		if err := host.Kernel.SetMTU(eth0, 1280); err != nil {
			b.Fatal(err)
		}
		a.kernel.link(eth0, false)
		a.fights = map[fightKey]*fight{} // measure repairs, not the rate limiter
		b.StartTimer()
		a.reconcile(cause{at: time.Now(), kind: causeResync})
	}
	b.StopTimer()
	if ns.MTU(b, "eth0") != 1360 {
		b.Fatal("not repaired")
	}
}

// stampedKernel notes when each MTU write returned.
type stampedKernel struct {
	fix.Kernel
	wrote time.Time
}

func (k *stampedKernel) SetMTU(l detect.Link, mtu int) error {
	err := k.Kernel.SetMTU(l, mtu)
	k.wrote = time.Now()
	return err
}

// BenchmarkKnownRepair is the agent's work for a reset the planner
// repaired before: ns/op from the event to the end of its handling (the
// write, then the log line and counters), to-write-ns from the event to
// the write's return. The plan that confirms it runs outside the timer.
func BenchmarkKnownRepair(b *testing.B) {
	a, ns, host, eth0 := benchAgent(b)
	k := &stampedKernel{Kernel: a.Host.Kernel}
	a.Host.Kernel = k
	var toWrite time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reset := eth0
		reset.MTU = 1280
		if err := host.Kernel.SetMTU(reset, 1280); err != nil {
			b.Fatal(err)
		}
		a.fights = map[fightKey]*fight{}
		b.StartTimer()
		start := time.Now()
		a.onEvent(netwatch.Event{At: start, Link: &reset})
		b.StopTimer()
		toWrite += k.wrote.Sub(start)
		a.settle()
		delete(a.ownWrites, "eth0") // the echo is not read here
	}
	b.ReportMetric(float64(toWrite.Nanoseconds())/float64(b.N), "to-write-ns")
	if a.knownRepairs != b.N || ns.MTU(b, "eth0") != 1360 {
		b.Fatalf("%d known repairs of %d, eth0 %d", a.knownRepairs, b.N, ns.MTU(b, "eth0"))
	}
}
