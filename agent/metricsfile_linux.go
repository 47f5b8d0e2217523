package agent

import (
	"context"
	"sync"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/metrics"
)

// metricsWriter writes metrics_file on a goroutine of its own, from the
// latest snapshot handed to it: a repair never waits for the disk, and a
// burst of changes costs one write (metrics.Write also skips a file whose
// content would not change).
type metricsWriter struct {
	mu   sync.Mutex
	path string
	next *metrics.Snapshot
	wake chan struct{}
	done chan struct{}
}

func startMetrics(ctx context.Context, a *agent) *metricsWriter {
	w := &metricsWriter{wake: make(chan struct{}, 1), done: make(chan struct{})}
	log := a.log
	go func() {
		defer close(w.done)
		failed := ""
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			w.mu.Lock()
			path, s := w.path, w.next
			w.next = nil
			w.mu.Unlock()
			if s == nil || path == "" {
				continue
			}
			_, err := metrics.Write(path, *s)
			switch {
			case err != nil && err.Error() != failed:
				failed = err.Error()
				log.Warn("cannot write the metrics file", "file", path, "error", err)
			case err == nil:
				failed = ""
			}
		}
	}()
	return w
}

func (w *metricsWriter) submit(path string, s metrics.Snapshot) {
	w.mu.Lock()
	w.path, w.next = path, &s
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// publishMetrics hands the counters and the host as the agent sees it now
// to the writer. It runs where the counters are saved (at most once a
// second, and only after a change), never between an event and its repair.
func (a *agent) publishMetrics() {
	if a.cfg.MetricsFile == "" || a.metrics == nil {
		return
	}
	st, err := a.kernel.derive(a.envNow(), a.cfg)
	if err != nil {
		return
	}
	rec, err := a.record.load()
	r := fix.Report{State: st, Plan: fix.NewPlan(st, rec, a.cfg)}
	if err != nil {
		r.RecordErr = err.Error()
	}
	// The plan's MSS part is the worker's to check: healthy is the MTU,
	// route and rule part being in place, and the firewall's last run
	// having gone through.
	mss := r.Plan.MSS
	r.Plan.MSS = nil
	s := a.counters.Snapshot(a.Version, a.counters.Stopped.IsZero(), r)
	if mss != nil && !a.firewallOK.Load() {
		s.Healthy = false
	}
	if !a.counters.Stopped.IsZero() {
		// Stopping: the writer has ended with the agent's context, and the
		// file must not go on saying the agent runs.
		if _, err := metrics.Write(a.cfg.MetricsFile, s); err != nil {
			a.log.Warn("cannot write the metrics file", "file", a.cfg.MetricsFile, "error", err)
		}
		return
	}
	a.metrics.submit(a.cfg.MetricsFile, s)
}
