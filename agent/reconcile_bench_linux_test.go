package agent

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/netnstest"
)

// BenchmarkReconcile is the agent's own work for one repair: lock, observe,
// plan, write the MTU, log. The rest of the event-to-repair latency is the
// machine waking the agent (see BenchmarkReactorFloor in cmd/wslmtu).
// Run: go test ./agent -run '^$' -bench Reconcile
func BenchmarkReconcile(b *testing.B) {
	ns := netnstest.NewWSL(b, 1280, 1280)
	cfg := config.Default()
	cfg.AssumeWSL = true
	host := fix.HostAt(ns.Handle, detect.HostSources(), b.TempDir())
	a := &agent{Options: Options{Host: host}, cfg: cfg, env: detect.Environment{WSL: true, Version: 2},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), fights: map[string]*fight{}, ownWrites: map[string]int{}}
	a.flush = time.NewTimer(time.Hour)
	l, _ := ns.Handle.LinkByName("eth0")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns.Handle.LinkSetMTU(l, 1280)
		a.fights = map[string]*fight{} // measure repairs, not the rate limiter
		b.StartTimer()
		a.reconcile(event{at: time.Now(), cause: "bench"})
	}
	b.StopTimer()
	if ns.MTU(b, "eth0") != 1360 {
		b.Fatal("not repaired")
	}
}
