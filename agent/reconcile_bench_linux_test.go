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
	"github.com/wslmtu/wslmtu/internal/netnstest"
)

// BenchmarkReconcile is the agent's own work for one repair from its model:
// lock, record check, derive, plan, write the MTU, log. The rest of the
// event-to-repair latency is the machine waking the agent (see
// TestRepairHarness in cmd/wslmtu, which measures it against a floor).
// Run: go test ./agent -run '^$' -bench Reconcile
func BenchmarkReconcile(b *testing.B) {
	ns := netnstest.NewWSL(b, 1280, 1280)
	cfg := config.Default()
	cfg.AssumeWSL = true
	cfg.StateDir = b.TempDir()
	host := fix.HostAt(ns.Handle, detect.HostSources(), cfg.StateDir)
	ctx, cancel := context.WithCancel(context.Background())
	nsh := netnstest.Handle(b, ns)
	a, _, err := setup(ctx, Options{Config: cfg, Host: host, Netns: &nsh,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Notify: func(string) {}})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	defer func() { cancel(); a.firewall.stop(firewallStopWait); a.lock.Release() }()
	a.health.stop(healthStopWait) // its fresh reads are not the repair path's cost
	eth0 := a.kernel.links[2]
	for idx, l := range a.kernel.links {
		if l.Name == "eth0" {
			eth0 = a.kernel.links[idx]
		}
	}
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
		a.reconcile(cause{at: time.Now(), what: "bench"})
	}
	b.StopTimer()
	if ns.MTU(b, "eth0") != 1360 {
		b.Fatal("not repaired")
	}
}
