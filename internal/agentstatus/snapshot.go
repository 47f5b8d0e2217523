package agentstatus

import (
	"maps"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/metrics"
)

// Snapshot is what the metrics show of an agent with these counters
// (running or not) and of the host as report r found it. The agent writes
// it to metrics_file; `wslmtu status --prom` prints it from the counters
// file and a fresh plan.
func (c Counters) Snapshot(version string, running bool, r fix.Report) metrics.Snapshot {
	if r.Paths == nil {
		r.Paths = c.Paths // the agent's checks judge the host too
	}
	s := metrics.Snapshot{
		Version:      version,
		AgentRunning: running,
		AgentStarted: c.Started,
		Reconciles:   c.Reconciles,
		// A copy: the agent goes on counting while the snapshot is written.
		Repairs:      maps.Clone(c.RepairsBy),
		Fights:       c.Fights,
		Resubscribes: c.Resubscribe,
		Healthy:      r.Health().Healthy,
	}
	if c.LastRepair != nil {
		s.LastRepair, s.LastRepairLatency = c.LastRepair.Time, c.LastRepair.Latency
	}
	if o := r.State.Outer; o != nil {
		s.Outer = &metrics.Link{Name: o.Name, MTU: o.MTU}
	}
	for _, t := range r.State.Tunnels {
		s.Tunnels = append(s.Tunnels, metrics.Link{Name: t.Name, MTU: t.MTU})
	}
	for _, p := range r.Paths {
		s.Paths = append(s.Paths, metrics.Path{Host: p.Host, OK: p.OK(), Largest: p.Largest, Checked: p.Checked})
	}
	return s
}
