package agent

import (
	"context"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/metrics"
)

// metricsJob is a snapshot for the metrics file at path.
type metricsJob struct {
	path string
	s    metrics.Snapshot
}

// startMetrics writes metrics_file on a goroutine of its own: a repair
// never waits for the disk (metrics.Write also skips a file whose content
// would not change).
func startMetrics(ctx context.Context, a *agent) *latest[metricsJob] {
	log := a.log
	failed := ""
	return startLatest(ctx, nil, func(j metricsJob) {
		_, err := metrics.Write(j.path, j.s)
		switch {
		case err != nil && err.Error() != failed:
			failed = err.Error()
			log.Warn("cannot write the metrics file", "file", j.path, "error", err)
		case err == nil:
			failed = ""
		}
	})
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
	a.metrics.submit(metricsJob{path: a.cfg.MetricsFile, s: s})
}
