package agent

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/wslmtu/wslmtu/fix"
)

// firewallWorker keeps the MSS rules in line on a goroutine of its own:
// reading and writing iptables costs milliseconds, and an MTU repair must
// never wait behind it. It takes the latest plan only: a burst of changes
// costs one firewall run, not one per change.
type firewallWorker struct {
	mu   sync.Mutex
	next *fix.Plan
	why  string
	wake chan struct{}
	done chan struct{}
}

func startFirewall(ctx context.Context, a *agent) *firewallWorker {
	w := &firewallWorker{wake: make(chan struct{}, 1), done: make(chan struct{})}
	host, log, ns, ok := a.Host, a.log, a.Netns, &a.firewallOK
	go func() {
		defer close(w.done)
		if ns != nil {
			// iptables runs as a child of this thread and inherits its
			// namespace; the thread is never unlocked, so it ends with the
			// goroutine instead of going back to the pool in the wrong one.
			runtime.LockOSThread()
			if err := netns.Set(*ns); err != nil {
				log.Error("MSS clamping: cannot enter the network namespace", "error", err)
				return
			}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			w.mu.Lock()
			plan, why := w.next, w.why
			w.next = nil
			w.mu.Unlock()
			if plan == nil {
				continue
			}
			change, err := host.SyncMSS(plan)
			ok.Store(err == nil || errors.Is(err, fix.ErrMSSUnavailable) && (plan.MSS == nil || !plan.MSS.Clamp))
			switch {
			case errors.Is(err, fix.ErrMSSUnavailable):
				log.Warn(err.Error())
			case err != nil:
				log.Error("MSS clamping failed", "cause", why, "error", err)
			case change != nil && len(change.Done) > 0:
				log.Info("MSS rules", "change", change.String(), "cause", why)
			}
		}
	}()
	return w
}

// submit replaces whatever plan is waiting with this one.
func (w *firewallWorker) submit(p fix.Plan, why string) {
	// The worker fills in the MSS part's state and warnings: it gets a copy
	// of its own.
	if p.MSS != nil {
		m := *p.MSS
		p.MSS = &m
	}
	p.Warnings = slices.Clone(p.Warnings)
	p.Notes = slices.Clone(p.Notes)
	w.mu.Lock()
	w.next, w.why = &p, why
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// stop drops what is waiting and waits (a while) for a firewall run under
// way to end, so the agent never exits in the middle of one. The worker ends
// when the agent's context does.
func (w *firewallWorker) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.next = nil
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-time.After(firewallStopWait):
	}
}

// firewallStopWait bounds the wait for a firewall run at stop: iptables
// itself gives up on a held xtables lock after 10 s.
const firewallStopWait = 12 * time.Second

// sendFirewall hands the last plan's MSS part to the worker when it differs
// from the one sent before, or when forced (start, reload, resync, the
// periodic check: netfilter changes emit no event to notice them by).
func (a *agent) sendFirewall(force bool) {
	p := a.firewallPlan
	if p.Refused != "" {
		return
	}
	key := "clamping off"
	if p.MSS != nil {
		key = fmt.Sprintf("%v", *p.MSS)
	}
	if !force && key == a.mssKey {
		return
	}
	a.mssKey = key
	why := "plan changed"
	if force {
		why = "check"
	}
	a.firewall.submit(p, why)
}

// armMSSResync runs the periodic rule check only while clamping is on, so an
// agent without it has no periodic work at all.
func (a *agent) armMSSResync() {
	if a.cfg.MSSClamp {
		a.mssTicker.Reset(a.MSSResyncInterval)
	} else {
		a.mssTicker.Stop()
	}
}
