package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/probe"
)

// verifyGap is the least time between two rounds of path checks: a fight
// of a thousand repairs a second costs one round a second.
const verifyGap = time.Second

// verifyWorker proves the paths to the config's verify hosts on a
// goroutine of its own (probe.Verify, the check `wslmtu verify` makes):
// after each repair, coalesced, and every verify_interval, jittered. It is
// never on the repair path, and sends nothing while verify is empty. What
// it finds goes to the loop (the counters, hence status, the metrics and
// the health verdict); a broken path is never "repaired": writing the same
// plan again would not mend it.
type verifyWorker struct {
	mu   sync.Mutex
	cfg  config.Config
	wake chan struct{}
	done chan struct{}
	// found carries the latest round to the loop; out holds it.
	found chan struct{}
	out   []fix.PathCheck
}

// startVerify starts the worker; it ends with ctx, abandoning a round under
// way (its probes stop with ctx).
func (a *agent) startVerify(ctx context.Context) *verifyWorker {
	w := &verifyWorker{cfg: a.cfg, wake: make(chan struct{}, 1), done: make(chan struct{}), found: make(chan struct{}, 1)}
	host := a.Host
	if a.HealthHost != nil {
		host = *a.HealthHost // a netlink socket of its own, never the repairs'
	}
	go func() {
		defer close(w.done)
		if !a.enterNetns("path checks") {
			return
		}
		timer := stoppedTimer()
		defer timer.Stop()
		var last time.Time
		verdicts := map[string]fix.PathVerdict{}
		planFailed := ""
		waited := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
				waited = false // a new repair: the plan may settle again
			case <-timer.C:
			}
			if wait := verifyGap - time.Since(last); !last.IsZero() && wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			cfg := w.config()
			timer.Stop()
			if len(cfg.Verify) == 0 {
				a.log.Debug("path checks: verify is empty, nothing sent")
				clear(verdicts)
				w.deliver(nil)
				continue
			}
			last = time.Now()
			r, err := host.Plan(cfg)
			var damaged *fix.DamagedError
			if err != nil && !errors.As(err, &damaged) {
				if err.Error() != planFailed {
					planFailed = err.Error()
					a.log.Warn("path checks: cannot observe the host", "error", err)
				}
			} else if pending(r) && !waited {
				// A repair is under way (WSL writes eth0, then its
				// routes): judged now, a path would read "not fixed" for
				// a moment. The repair asks again; one retry a second
				// later bounds the wait where it never comes (a plan that
				// cannot be applied), and then the path is judged as it is.
				planFailed, waited = "", true
				timer.Reset(verifyGap)
				continue
			} else {
				planFailed, waited = "", false
				results := probe.Verify(ctx, cfg.Verify, r, probe.Config{})
				if ctx.Err() != nil {
					return
				}
				if len(w.wake) > 0 {
					// A repair came while the probes were out: the kernel
					// they crossed was not the one the plan was read from
					// (WSL adds a route, then the agent gives it its mtu).
					// The round it asked for judges the settled host.
					continue
				}
				a.logVerdicts(verdicts, results)
				w.deliver(results)
			}
			if every := cfg.VerifyEvery(); every > 0 {
				timer.Reset(jitter(every))
			}
		}
	}()
	return w
}

// pending says whether the plan is not in force yet on a host it manages.
func pending(r fix.Report) bool {
	return r.Plan.Refused == "" && (len(r.Plan.Changes()) > 0 || r.Plan.MSS.NeedsChange())
}

// jitter spreads d by ±10%, so agents started together do not probe together.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// check asks for a round with cfg (coalesced with any waiting).
func (w *verifyWorker) check(cfg config.Config) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.cfg = cfg
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *verifyWorker) config() config.Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cfg
}

func (w *verifyWorker) deliver(results []fix.PathCheck) {
	w.mu.Lock()
	w.out = results
	w.mu.Unlock()
	select {
	case w.found <- struct{}{}:
	default:
	}
}

// ready is where the loop hears of a round done; nil (never) without a worker.
func (w *verifyWorker) ready() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.found
}

func (w *verifyWorker) results() []fix.PathCheck {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out
}

// stop waits (at most d) for the worker to end after ctx.
func (w *verifyWorker) stop(d time.Duration) {
	if w == nil {
		return
	}
	select {
	case <-w.done:
	case <-time.After(d):
	}
}

// logVerdicts logs a path whose verdict changed (its first included), not
// every check: a broken path as a warning with its evidence and side.
func (a *agent) logVerdicts(verdicts map[string]fix.PathVerdict, results []fix.PathCheck) {
	seen := map[string]bool{}
	for _, p := range results {
		seen[p.Host] = true
		if verdicts[p.Host] == p.Verdict {
			continue
		}
		verdicts[p.Host] = p.Verdict
		attrs := []any{"host", p.Host, "verdict", string(p.Verdict), "interface", p.Interface,
			"must_carry", p.Size, "largest", p.Largest, "evidence", p.Evidence}
		switch {
		case p.OK():
			a.log.Info("path ok", attrs...)
		case p.Broken():
			a.log.Warn("path broken while the plan is in force", append(attrs, "likely_side", string(p.Side))...)
		default:
			if p.Side != "" {
				attrs = append(attrs, "likely_side", string(p.Side))
			}
			a.log.Warn("path not ok", attrs...)
		}
	}
	for h := range verdicts {
		if !seen[h] {
			delete(verdicts, h)
		}
	}
}

// pathsFound takes a round's results into the counters (status, metrics,
// health), saved like a repair: at most once a second.
func (a *agent) pathsFound() {
	results := a.verify.results()
	if len(results) == 0 && len(a.counters.Paths) == 0 {
		return
	}
	a.counters.Paths = results
	a.countersChanged()
}

// verifyStopWait bounds the wait at stop for a round under way: its
// probes end with the agent's context at once.
const verifyStopWait = 2 * time.Second
