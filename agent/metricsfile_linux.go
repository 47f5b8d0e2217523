package agent

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/metrics"
)

// healthInterval is how often the health worker looks at the host without
// being asked: a change the agent never heard of shows in the metrics and
// the unit's status within it.
const healthInterval = time.Minute

// healthJob is what the health worker needs of the agent: the counters and
// the config as they are now (copies: the loop goes on with its own).
type healthJob struct {
	counters agentstatus.Counters
	cfg      config.Config
	running  bool
}

// healthWorker judges the host on a goroutine of its own, as `wslmtu
// status` does: a fresh read of the kernel, the firewall and the revert
// record (fix.Host.Plan), judged by fix.Report.Health, never the agent's
// model, which a change without an event (a flushed MSS chain) leaves
// behind. The verdict goes to metrics_file and to the unit's status text
// (STATUS=). It runs after each change the agent makes (with the counters
// file, at most once a second, and after each firewall run), and every
// HealthInterval; never on the
// repair path, and on a netlink socket of its own (HealthHost) so that a
// dump never holds up a repair.
type healthWorker struct {
	mu       sync.Mutex
	next     *healthJob
	wake     chan struct{}
	quit     chan struct{}
	quitOnce sync.Once
	done     chan struct{}
}

// startHealth starts the worker; it ends with finish (the agent's stop),
// after the last job.
func (a *agent) startHealth() *healthWorker {
	w := &healthWorker{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	host := a.Host
	if a.HealthHost != nil {
		host = *a.HealthHost
	}
	interval := a.HealthInterval
	if interval <= 0 {
		interval = healthInterval
	}
	check := a.healthCheck(host)
	go func() {
		defer close(w.done)
		if !a.enterNetns("health check") {
			return
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var last *healthJob
		for {
			quit := false
			select {
			case <-w.quit:
				quit = true
			case <-w.wake:
			case <-tick.C:
			}
			w.mu.Lock()
			fresh := w.next
			w.next = nil
			w.mu.Unlock()
			if fresh != nil {
				last = fresh
			}
			switch {
			case quit:
				if fresh != nil {
					check(*fresh) // the agent's last word
				}
				return
			case last != nil:
				check(*last)
			}
		}
	}()
	return w
}

// submit replaces whatever waits with j.
func (w *healthWorker) submit(j healthJob) {
	w.mu.Lock()
	w.next = &j
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// recheck asks for a look with the last job, after a change the loop does
// not see (the firewall worker's).
func (w *healthWorker) recheck() {
	if w == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// finish hands the worker its last job and waits (at most d) for it to
// be done.
func (w *healthWorker) finish(j healthJob, d time.Duration) {
	if w == nil {
		return
	}
	w.submit(j)
	w.stop(d)
}

// stop ends the worker after the job waiting, if any, and waits for it
// (at most d).
func (w *healthWorker) stop(d time.Duration) {
	w.quitOnce.Do(func() { close(w.quit) })
	select {
	case <-w.done:
	case <-time.After(d):
	}
}

// healthCheck returns the check the worker runs: it logs a failure to
// write the metrics once until it changes, and sends STATUS= only when the
// text changes.
func (a *agent) healthCheck(host fix.Host) func(healthJob) {
	failed, status := "", ""
	return func(j healthJob) {
		text, err := a.checkHealth(host, j)
		switch {
		case err != nil && err.Error() != failed:
			failed = err.Error()
			a.log.Warn("cannot write the metrics file", "file", j.cfg.MetricsFile, "error", err)
		case err == nil:
			failed = ""
		}
		if text != status && text != "" && j.running {
			status = text
			a.Notify("STATUS=" + text)
		}
	}
}

// checkHealth reads the host, writes the metrics file (when set) and
// returns the unit's status text.
func (a *agent) checkHealth(host fix.Host, j healthJob) (string, error) {
	if j.cfg.MetricsFile == "" && !a.statusWanted {
		return "", nil // nobody to tell: no read at all
	}
	r, err := host.Plan(j.cfg)
	var damaged *fix.DamagedError
	if err != nil && !errors.As(err, &damaged) {
		// Nothing observed: no metrics to show (status fails likewise).
		return "cannot observe the host: " + err.Error(), nil
	}
	r.Paths = j.counters.Paths
	health := r.Health()
	text := fmt.Sprintf("%s; %d repairs, %d fights", health, j.counters.Repairs, j.counters.Fights)
	if j.cfg.MetricsFile == "" {
		return text, nil
	}
	_, err = metrics.Write(j.cfg.MetricsFile, j.counters.Snapshot(a.Version, j.running, r))
	return text, err
}

// publishMetrics hands the counters and the config to the health worker.
// It runs where the counters are saved (at most once a second, and only
// after a change), never between an event and its repair.
func (a *agent) publishMetrics() {
	if a.health == nil {
		return
	}
	c := a.counters
	c.RepairsBy = maps.Clone(c.RepairsBy)
	if c.LastRepair != nil {
		r := *c.LastRepair
		c.LastRepair = &r
	}
	j := healthJob{counters: c, cfg: a.cfg, running: c.Stopped.IsZero()}
	if !j.running {
		// Stopping: the file must stop saying the agent runs.
		a.health.finish(j, healthStopWait)
		return
	}
	a.health.submit(j)
}

// healthStopWait bounds the wait at stop for a health check under way (it
// may be reading iptables, which gives up on a held lock after 10 s).
const healthStopWait = 12 * time.Second

// enterNetns moves the calling goroutine's thread into the agent's network
// namespace for good (iptables runs as a child of the thread and inherits
// it): ns.NetNS.Enter. false: it could not.
func (a *agent) enterNetns(who string) bool {
	if a.Netns == nil {
		return true
	}
	if err := a.Netns.Enter(); err != nil {
		a.log.Error(who+": cannot enter the network namespace", "error", err)
		return false
	}
	return true
}
