package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/firewall"
)

// firewallJob is a plan whose MSS part the firewall worker brings the
// firewall in line with, and why.
type firewallJob struct {
	plan fix.Plan
	why  string
}

// startFirewall keeps the MSS rules in line on a goroutine of its own:
// reading and writing iptables costs milliseconds, and an MTU repair must
// never wait behind it.
func startFirewall(ctx context.Context, a *agent) *latest[firewallJob] {
	host, log := a.Host, a.log
	enter := func() bool { return a.enterNetns("MSS clamping") }
	return startLatest(ctx, enter, func(j firewallJob) {
		plan := j.plan
		change, err := host.SyncFirewall(&plan)
		switch {
		case errors.Is(err, firewall.ErrUnavailable):
			log.Warn(err.Error())
		case err != nil:
			log.Error("MSS clamping failed", "cause", j.why, "error", err)
		case change != nil && len(change.Done) > 0:
			log.Info("MSS rules", "change", change.String(), "cause", j.why)
		}
		a.health.recheck()
	})
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
	// The worker fills in the MSS part's state and warnings: it gets a
	// copy of its own.
	if p.MSS != nil {
		m := *p.MSS
		p.MSS = &m
	}
	p.Warnings = slices.Clone(p.Warnings)
	p.Notes = slices.Clone(p.Notes)
	a.firewall.submit(firewallJob{plan: p, why: why})
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
