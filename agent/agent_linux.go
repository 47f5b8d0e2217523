package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/netwatch"
	"github.com/wslmtu/wslmtu/internal/ns"
	"github.com/wslmtu/wslmtu/internal/statefile"
)

// Options wire the agent to one host (or, in tests, one namespace or a
// fake kernel).
type Options struct {
	Config     config.Config
	ConfigPath string
	// Overlay re-applies the command-line flags to a reloaded config file,
	// so flags keep winning after a reload. It validates the result.
	Overlay func(config.Config) (config.Config, error)
	// Host reads (Sources, Links) and writes (Kernel, Store, Firewall).
	Host fix.Host
	// Events delivers the kernel's changes; nil subscribes to netlink in
	// Netns with ReceiveBufferSize.
	Events netwatch.Source
	// Netns is the namespace to follow; nil follows the agent's own.
	Netns *ns.NetNS
	// ReceiveBufferSize of the netlink socket; 0 picks a large one. Tests
	// make it tiny to force ENOBUFS.
	ReceiveBufferSize int
	Logger            *slog.Logger
	// Notify sends sd_notify states; nil uses systemd's socket when present.
	Notify func(state string)
	// Ready is closed after the first reconcile (tests wait on it).
	Ready chan<- struct{}
	// Resync asks for a full look now: the config is read again, the kernel
	// re-read and the MSS rules checked (SIGHUP, `systemctl reload wslmtu`).
	Resync <-chan struct{}
	// MSSResyncInterval is how often the MSS rules are checked while
	// clamping is on; 0 means once a minute.
	MSSResyncInterval time.Duration
	// ConfigSettle is how long the config file must be quiet before a
	// reload reads it; 0 means 100 ms.
	ConfigSettle time.Duration
	// Version is the build's version, for the metrics' wslmtu_build_info.
	Version string
	// HealthHost is the host as the health check reads it (metrics_file,
	// STATUS=): the same one as Host, on a netlink socket of its own so a
	// dump never holds up a repair; nil uses Host.
	HealthHost *fix.Host
	// HealthInterval is how often the health check runs without a change
	// of the agent's own; 0 means once a minute.
	HealthInterval time.Duration

	// idle is for tests: the loop answers each request on it with a loopView
	// once everything the kernel reported before the request is handled,
	// the echoes of the agent's own writes included. Nil (never ready) in
	// production.
	idle chan chan<- loopView
}

const (
	mssResyncInterval = time.Minute
	configSettle      = 100 * time.Millisecond
	// lockTimeout bounds the wait at start for another wslmtu (a fix run
	// holds the lock for milliseconds).
	lockTimeout = 10 * time.Second
)

// agent is the state of one Run.
type agent struct {
	Options
	cfg    config.Config
	env    detect.Environment
	log    *slog.Logger
	kernel *model
	lock   *statefile.Lock
	record recordCache

	counters agentstatus.Counters
	// fights are the things recently repaired, each with its limiter; calm
	// looks at them while there are any.
	fights    map[fightKey]*fight
	calm      *time.Timer
	calmArmed bool
	// ownWrites are MTUs the agent just wrote: their RTM_NEWLINK echoes must
	// not look like somebody else's change.
	ownWrites map[string]int
	pending   []cause
	retry     *time.Timer
	// holdUntil: a plan needed something a fight limits; no reconcile
	// before then (the retry timer fires at it), so a fight costs a bounded
	// number of plans, not one per reset.
	holdUntil time.Time
	// now is the clock of the fight limiters (tests step it).
	now func() time.Time
	// The counters file is rewritten at most once a second, and only after
	// a change, so a fight costs no disk writes per reset and idle costs none.
	countersSaved time.Time
	flush         *time.Timer

	firewall *latest[firewallJob]
	// mssKey is the MSS part last sent to the firewall worker.
	mssKey    string
	mssTicker *time.Ticker

	reload *configReload
	// failed is the last reconcile's error text, logged once until it
	// changes; warnings are the plan's warnings standing, each logged when
	// it appears and when it clears.
	failed   string
	warnings []string
	// firewallPlan is the last plan, whose MSS part the worker applies.
	firewallPlan fix.Plan
	// assumed is the environment with assume_wsl applied, told once.
	assumed *detect.Environment
	// health judges the host afresh for metrics_file and STATUS= (when
	// statusWanted: under systemd, or a caller's Notify).
	health       *healthWorker
	statusWanted bool
	// verify proves the paths to the verify hosts after repairs and
	// every verify_interval.
	verify *verifyWorker
	// known are the MTU repairs the planner decided and the reconciles
	// since confirmed, by link index: the same reset again is repaired as
	// the event is read, before the plan that confirms it (see repairKnown).
	known map[int]knownRepair
	// knownRepairs counts the repairs made that way (tests read it).
	knownRepairs int
	// repairs are the known repairs the netlink reader may write itself,
	// armed while the loop waits (see armRepairs); received counts the
	// events read from the current subscription, which an arm names.
	repairs  *netwatch.Repairs
	received uint64
	armBuf   []netwatch.Repair
	// events counts the kernel's events read, echoes those of them that
	// were only the echo of the agent's own MTU write (tests read both).
	events, echoes int
	// configRead is the config file as the last reload read it (tests
	// wait for it).
	configRead fileStamp
	// idlers wait for the loop to have nothing left to do (see Options.idle).
	idlers []chan<- loopView
}

// loopView is what tests read of a running agent, as the loop saw it when it
// had nothing left to do.
type loopView struct {
	counters     agentstatus.Counters
	events       int
	echoes       int
	knownRepairs int
	configRead   fileStamp
}

// knownRepair is one link's MTU repair as the last plans decided it: the
// link at from is put back to to, and the record already holds exactly
// that, so repeating it costs no disk write.
type knownRepair struct {
	name     string
	from, to int
	reason   string
}

// Run applies the plan, then follows the kernel until ctx is done.
func Run(ctx context.Context, opts Options) error {
	a, events, err := setup(ctx, opts)
	if err != nil {
		return err
	}
	return a.loop(ctx, events)
}

// setup subscribes first and reads the kernel after, so no change between
// the two is missed, then makes the first reconcile.
func setup(ctx context.Context, opts Options) (*agent, <-chan netwatch.Event, error) {
	a := &agent{Options: opts, cfg: opts.Config, log: opts.Logger,
		fights: map[fightKey]*fight{}, ownWrites: map[string]int{}, known: map[int]knownRepair{}, now: time.Now}
	if a.log == nil {
		a.log = slog.Default()
	}
	// The health check's status text is for a caller's Notify or systemd.
	a.statusWanted = a.Notify != nil || os.Getenv("NOTIFY_SOCKET") != ""
	if a.Notify == nil {
		a.Notify = func(state string) { daemon.SdNotify(false, state) }
	}
	if a.Events == nil {
		a.repairs = &netwatch.Repairs{}
		a.Events = netwatch.Netlink{NS: a.Netns, BufferSize: a.ReceiveBufferSize, Repairs: a.repairs}
	}
	if a.MSSResyncInterval <= 0 {
		a.MSSResyncInterval = mssResyncInterval
	}
	if a.ConfigSettle <= 0 {
		a.ConfigSettle = configSettle
	}
	a.counters = agentstatus.Counters{PID: os.Getpid(), Started: time.Now(), Config: a.cfg.Describe()}
	a.retry = stoppedTimer()
	a.flush = stoppedTimer()
	a.calm = stoppedTimer()
	a.mssTicker = time.NewTicker(a.MSSResyncInterval)
	a.mssTicker.Stop()

	events, err := a.Events.Subscribe(ctx)
	if err != nil {
		return nil, nil, err
	}
	a.kernel = newModel(a.Host.Links, a.Host.Sources)
	if d, ok := a.Events.(netwatch.Dumper); ok {
		a.kernel.dump = d // the same namespace, read without keeping what is not ours
	}
	if err := a.kernel.readAll(); err != nil {
		return nil, nil, err
	}
	a.env = detect.DetectEnvironment(a.Host.Sources, a.kernel.snapshot().Links)
	// Bad input stops the agent at start (exit 2), before anything changes:
	// a tunnel pattern that selects the outer interface, a missing
	// outer_interface. Later, the same is logged and waited out.
	if _, err := a.kernel.derive(a.envNow(), a.cfg); err != nil {
		return nil, nil, err
	}
	// The state directory's lock is the agent's for its whole life: a
	// second agent, a fix or a revert is told at once who keeps the host.
	if a.lock, err = statefile.Acquire(a.Host.Store.Dir, statefile.LinksLock, lockTimeout, func(holder string) {
		a.log.Info("waiting for the state directory's lock", "holder", holder)
	}); err != nil {
		var held *statefile.HeldError
		if errors.As(err, &held) {
			err = fmt.Errorf("%s already keeps this host (it holds %s); one agent at a time: stop it first (sudo systemctl stop wslmtu)", held.Holder, held.Path)
		}
		return nil, nil, err
	}
	a.Host.LockHeld = true
	a.record = recordCache{store: a.Host.Store}
	a.firewall = startFirewall(ctx, a)
	a.health = a.startHealth()
	a.verify = a.startVerify(ctx)
	a.reload = a.watchConfig(ctx)

	a.reconcile(cause{at: time.Now(), kind: causeStart})
	// Leftover chains of an earlier run are removed even with clamping off:
	// the worker looks once now, and again whenever the config changes.
	a.sendFirewall(true)
	a.Notify(daemon.SdNotifyReady)
	if a.Ready != nil {
		close(a.Ready)
	}
	a.log.Info("following link, route and rule changes", "config", a.cfg.Describe())
	a.armMSSResync()
	return a, events, nil
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// loop handles events until ctx is done. Each burst of queued events is
// drained, then reconciled once.
func (a *agent) loop(ctx context.Context, events <-chan netwatch.Event) error {
	defer a.lock.Release()
	defer a.mssTicker.Stop()
	var watchdog <-chan time.Time
	if interval, err := daemon.SdWatchdogEnabled(false); err == nil && interval > 0 {
		// Pinging from this loop, not a goroutine of its own, means a wedged
		// loop gets the agent restarted.
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		watchdog = t.C
	}
	for {
		ended := false
		a.armRepairs()
		select {
		case <-ctx.Done():
			a.disarmRepairs()
			return a.stop()
		case ev, ok := <-events:
			if !ok || ev.Err != nil {
				ended = true
				a.subscriptionEnded(ev)
			} else {
				a.onEvent(ev)
			}
		case <-a.reload.due():
			a.reloadConfig("config file changed")
		case <-a.Resync:
			a.log.Info("resync requested")
			a.reloadConfig("resync requested")
			a.resync(causeResync)
		case <-a.retry.C:
			a.retryDue()
		case <-a.verify.ready():
			a.pathsFound()
		case <-a.calm.C:
			a.calmArmed = false
			a.calmFights(a.now())
		case <-a.flush.C:
			a.saveCounters()
		case <-a.mssTicker.C:
			a.sendFirewall(true)
		case <-watchdog:
			a.Notify(daemon.SdNotifyWatchdog)
		case w := <-a.idle:
			a.idlers = append(a.idlers, w)
		}
		// No fixed debounce: take whatever else is already queued, then
		// reconcile once for all of it.
		if !ended {
			ended = !a.drain(events)
		}
		if ended {
			var err error
			if events, err = a.resubscribe(ctx); err != nil {
				return a.stop()
			}
		}
		a.disarmRepairs()
		a.settle()
		a.answerIdle(events)
	}
}

// answerIdle answers the tests waiting for the loop to be idle: nothing
// queued (the echo of a write made in this turn is queued already: the
// kernel sends it before the write returns) and nothing pending.
func (a *agent) answerIdle(events <-chan netwatch.Event) {
	if len(a.idlers) == 0 || len(events) > 0 || len(a.pending) > 0 {
		return
	}
	p := loopView{counters: a.counters, events: a.events, echoes: a.echoes, knownRepairs: a.knownRepairs, configRead: a.configRead}
	p.counters.RepairsBy = maps.Clone(a.counters.RepairsBy)
	if r := a.counters.LastRepair; r != nil {
		last := *r
		p.counters.LastRepair = &last
	}
	for _, w := range a.idlers {
		w <- p
	}
	a.idlers = a.idlers[:0]
}

// settle reconciles for the events served, unless a fight holds repairs
// back: then the retry serves them.
func (a *agent) settle() {
	if len(a.pending) == 0 || a.now().Before(a.holdUntil) {
		return
	}
	causes := slices.Clone(a.pending)
	a.pending = a.pending[:0]
	a.reconcile(causes...)
}

func (a *agent) retryDue() {
	a.holdUntil = time.Time{}
	a.pending = append(a.pending, cause{at: time.Now(), kind: causeRetry})
}

func (a *agent) subscriptionEnded(ev netwatch.Event) {
	if ev.Err != nil {
		a.log.Warn("netlink subscription failed; subscribing again", "error", ev.Err)
	}
}

// drain handles the events already queued; false when the subscription
// ended.
func (a *agent) drain(events <-chan netwatch.Event) bool {
	for {
		select {
		case ev, ok := <-events:
			if !ok || ev.Err != nil {
				a.subscriptionEnded(ev)
				return false
			}
			a.onEvent(ev)
		default:
			return true
		}
	}
}

func (a *agent) stop() error {
	a.Notify(daemon.SdNotifyStopping)
	a.firewall.stop(firewallStopWait)
	a.verify.stop(verifyStopWait)
	if a.cfg.RevertOnStop {
		reverted, _, err := a.Host.Revert()
		for _, r := range reverted {
			a.log.Info("reverted on stop", "change", r.String())
		}
		if err != nil {
			a.log.Error("revert on stop failed", "error", err)
		}
	} else {
		a.log.Info("stopping; the fixes stay in place (revert_on_stop = false)")
	}
	a.counters.Stopped = time.Now()
	a.counters.Fighting = nil // fights end with the agent
	a.saveCounters()
	a.flush.Stop()
	return nil
}

// resubscribe never gives up while the agent runs: an agent that stops
// listening is worse than one that retries, so it backs off up to a second
// between attempts, and stops waiting at once when ctx is done.
func (a *agent) resubscribe(ctx context.Context) (<-chan netwatch.Event, error) {
	a.counters.Resubscribe++
	delay := time.Millisecond
	for {
		events, err := a.Events.Subscribe(ctx)
		if err == nil {
			a.received = 0
			a.resync(causeResubscribed)
			a.saveCounters()
			return events, nil
		}
		a.log.Error("subscribing again failed", "error", err, "retry_in", delay.String())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, time.Second)
	}
}

// resync reads the whole kernel view again and reconciles.
func (a *agent) resync(why causeKind) {
	clear(a.known)
	if err := a.kernel.readAll(); err != nil {
		a.log.Error("reading the kernel's view failed", "error", err)
	}
	a.pending = append(a.pending, cause{at: time.Now(), kind: why})
	a.mssKey = "" // and look at the firewall again
}

// onEvent updates the model and queues a reconcile when the change can
// matter to the plan.
func (a *agent) onEvent(ev netwatch.Event) {
	a.events++
	a.received++
	switch {
	case ev.Link != nil:
		a.onLink(ev)
	case ev.Route != nil:
		if a.kernel.route(*ev.Route, ev.Gone) {
			c := cause{at: ev.At, kind: causeRouteChanged, route: *ev.Route}
			c.route.Dev = a.kernel.links[c.route.LinkIndex].Name
			if ev.Gone {
				c.kind = causeRouteRemoved
			}
			a.queue(c)
		}
	case ev.Addr != nil:
		a.onAddr(ev)
	case ev.Rules:
		a.kernel.rulesChanged()
		a.queue(cause{at: ev.At, kind: causeRules})
	}
}

func (a *agent) queue(c cause) {
	a.pending = append(a.pending, c)
}

// onLink follows a link's MTU, and what the kernel does to routes without
// a word when a link goes down or away: a NIC that mirrored mode hot-plugs
// comes back as a new link, with its routes to be made again.
func (a *agent) onLink(ev netwatch.Event) {
	l := *ev.Link
	old, had := a.kernel.links[l.Index]
	relevant := a.relevant(l) || (had && a.relevant(old))
	a.kernel.link(l, ev.Gone)
	if ev.Wrote != 0 {
		// The reader wrote it back as it read the event (see armRepairs):
		// it is accounted whatever the loop did since, for it was made.
		c := cause{at: ev.At, kind: causeMTU, link: l.Name, mtu: l.MTU}
		a.repairKnown(old, l, c, ev)
		a.queue(c)
		return
	}
	if !relevant {
		return
	}
	c := cause{at: ev.At, link: l.Name, mtu: l.MTU}
	switch {
	case ev.Gone:
		delete(a.ownWrites, l.Name)
		c.kind = causeLinkRemoved
	case !had:
		c.kind = causeLinkAppeared
	case old.Up && !l.Up:
		c.kind = causeLinkDown
	case !old.Up && l.Up:
		c.kind = causeLinkUp
	default:
		if want, ok := a.ownWrites[l.Name]; ok && want == l.MTU {
			delete(a.ownWrites, l.Name)
			a.echoes++
			return
		}
		c.kind = causeMTU
		a.repairKnown(old, l, c, ev)
		// The plan still runs, and confirms the repair (it finds nothing to
		// do) or corrects it.
	}
	a.queue(c)
}

// repairKnown writes, as the event is read, a repair the planner decided
// before: the link is back at the value a plan put right and nothing else
// about it changed, nothing else waits for a plan, and the fight limiter
// allows it. Logging, counters and the model follow the write; the record
// already holds this repair (fix.Apply would not save it either).
func (a *agent) repairKnown(old, l detect.Link, c cause, ev netwatch.Event) {
	r, ok := a.known[l.Index]
	var err error
	if ev.Wrote != 0 {
		// The reader wrote it, armed under the same conditions (see
		// armRepairs); a config reload since may have forgotten why.
		if !ok || r.name != l.Name || r.from != l.MTU || r.to != ev.Wrote {
			r = knownRepair{name: l.Name, from: l.MTU, to: ev.Wrote, reason: "the value a plan chose before"}
		}
		if f := a.fights[linkKey(l.Name)]; f != nil {
			f.needed(a.now())
		}
		err = ev.WriteErr
	} else {
		if !a.mayRepairKnown(old, r, ok) || l.MTU != r.from || old.Name != l.Name || old.Up != l.Up || old.Kind != l.Kind {
			return
		}
		if f := a.fights[linkKey(l.Name)]; f != nil {
			f.needed(a.now())
		}
		err = a.Host.Kernel.SetMTU(l, r.to)
	}
	if err != nil {
		delete(a.known, l.Index) // the plan tries again, and says why it fails
		return
	}
	done := a.now()
	a.knownRepairs++
	changes := []fix.Change{{Action: fix.Action{Link: l.Name, Index: l.Index, From: l.MTU, To: r.to, Reason: r.reason},
		Found: l.MTU, Wrote: true}}
	a.kernel.applied(changes)
	if a.logChanges([]cause{c}, changes, done) {
		a.countersChanged()
	}
	a.verify.check(a.cfg) // a repair, like the plan's: the paths are proven again
}

// mayRepairKnown is whether r, known for the link now at old, may be
// written as its reset is read: the link is at the value a plan put right,
// nothing else waits for a plan, the record already holds the repair, and
// the fight limiter allows it (else the plan's limiter decides, and logs
// the fight).
func (a *agent) mayRepairKnown(old detect.Link, r knownRepair, ok bool) bool {
	if !ok || r.name != old.Name || old.MTU != r.to || len(a.pending) > 0 || a.now().Before(a.holdUntil) {
		return false
	}
	if !a.record.valid || a.record.rec.Links[old.Name] != (fix.LinkRecord{Before: r.from, Wrote: r.to}) {
		return false
	}
	if f := a.fights[linkKey(old.Name)]; f != nil && (f.active || f.limiter.TokensAt(a.now()) < 1) {
		return false
	}
	return true
}

// armRepairs lets the netlink reader write the known repairs itself while
// the loop waits: the write then leaves on the thread the kernel woke, and
// the loop logs and counts it as it reads the event (Event.Wrote). An arm
// is the loop's state when it has read every event handed on, so it holds
// only until the reader hands on another (an event the loop has not read
// may change its mind). The loop disarms before it plans, writes or stops,
// so a reader's write comes first, as if its event had been read before
// whatever else woke the loop.
func (a *agent) armRepairs() {
	if a.repairs == nil {
		return
	}
	a.armBuf = a.armBuf[:0]
	for idx, r := range a.known {
		l, ok := a.kernel.links[idx]
		if !ok || !a.relevant(l) || !a.mayRepairKnown(l, r, true) {
			continue
		}
		if want, own := a.ownWrites[l.Name]; own && want == r.from {
			continue // that value is the echo of our own write, not a reset
		}
		a.armBuf = append(a.armBuf, netwatch.Repair{Link: l, From: r.from})
	}
	a.repairs.Arm(a.received, a.armBuf)
}

func (a *agent) disarmRepairs() {
	if a.repairs != nil {
		a.repairs.Disarm()
	}
}

// learnRepairs keeps, after a plan was applied in full, the MTU repairs it
// made, and of those known before the ones it confirmed: no action for the
// link, which is at the repaired value, with the record unchanged.
func (a *agent) learnRepairs(plan fix.Plan, changes []fix.Change) {
	for idx, r := range a.known {
		l, ok := a.kernel.links[idx]
		if !ok || l.Name != r.name || l.MTU != r.to || a.record.rec.Links[r.name] != (fix.LinkRecord{Before: r.from, Wrote: r.to}) ||
			slices.ContainsFunc(plan.Actions, func(ac fix.Action) bool { return ac.Link == r.name }) {
			delete(a.known, idx)
		}
	}
	for _, ch := range changes {
		if ch.Link == "" || !ch.Wrote || ch.Index == 0 || ch.Found == ch.To {
			continue
		}
		if a.record.rec.Links[ch.Link] == (fix.LinkRecord{Before: ch.Found, Wrote: ch.To}) {
			a.known[ch.Index] = knownRepair{name: ch.Link, from: ch.Found, to: ch.To, reason: ch.Reason}
		}
	}
}

// onAddr follows addresses: deleting a link's last IPv4 address flushes
// its routes, ours included, and nothing but the address event says so.
// A new address on a link that matters is worth a look too: a route that
// could not be added without it can be now.
func (a *agent) onAddr(ev netwatch.Event) {
	ad := *ev.Addr
	flushed := a.kernel.addr(ad, ev.Gone)
	l, ok := a.kernel.links[ad.LinkIndex]
	c := cause{at: ev.At, link: l.Name, index: ad.LinkIndex, addr: ad.Prefix}
	switch {
	case flushed:
		c.kind = causeAddrLost
	case !ev.Gone && ok && a.relevant(l):
		c.kind = causeAddrGot
	default:
		return
	}
	a.queue(c)
}

// relevant says whether a link can change the plan: one that can change
// what detect decides (see detect.Relevant), or an interface wslmtu
// changed, which the plan may have to put back.
func (a *agent) relevant(l detect.Link) bool {
	if detect.Relevant(l, a.kernel.outerIndex, a.cfg) {
		return true
	}
	_, recorded := a.record.rec.Links[l.Name]
	return recorded
}

func (a *agent) scheduleRetry(d time.Duration) {
	if d <= 0 {
		d = time.Millisecond
	}
	a.retry.Reset(d)
}

// reconcile plans from the model and applies only what differs. It reads
// nothing from the kernel unless an event said the model is incomplete
// (rules changed; a link went down or away, or lost an address, taking
// routes with it), and the firewall is left to its worker.
// causes are the events served, in order; each change is logged with the
// one that called for it.
func (a *agent) reconcile(causes ...cause) {
	c := causes[0]
	a.counters.Reconciles++
	rec, err := a.record.load()
	if err != nil {
		clear(a.known)
		a.logFailure("the revert record cannot be used; changing nothing", err)
		return
	}
	if rec.Policy != nil {
		a.kernel.keepTable(rec.Policy.Table)
	}
	st, err := a.kernel.derive(a.envNow(), a.cfg)
	if err != nil {
		clear(a.known)
		a.logFailure("observing the host failed; changing nothing", err)
		return
	}
	plan := fix.NewPlan(st, rec, a.cfg)
	if plan.Policy != nil {
		a.kernel.keepTable(plan.Policy.Table)
	}
	a.noteWarnings(plan.Warnings)
	if wait := a.limit(plan, a.now()); wait > 0 {
		a.holdUntil = a.now().Add(wait)
		a.scheduleRetry(wait)
		return
	}
	rec, changes, err := fix.Apply(plan, rec, a.Host.Kernel, a.Host.Store)
	done := a.now()
	a.record.set(rec)
	a.kernel.applied(changes)
	a.kernel.outerIndex = 0
	if st.Outer != nil {
		a.kernel.outerIndex = st.Outer.Index
	}
	a.failed = ""
	if err != nil || plan.Refused != "" {
		clear(a.known)
	} else {
		a.learnRepairs(plan, changes)
	}
	for name, lr := range plan.Adopt {
		if err == nil {
			a.log.Info("took over tailscaled's own WSL fix: what Windows chose is kept for every other packet, and revert puts it back",
				"interface", name, "windows_chose", lr.Before, "tailscaled_set", lr.Wrote)
		}
	}
	start := c.kind == causeStart
	if start && plan.Refused != "" {
		a.log.Warn("not applying: " + plan.Refused)
	}
	repaired := a.logChanges(causes, changes, done)
	if err != nil {
		a.log.Error("applying the plan failed", "cause", c.String(), "error", err)
	}
	a.firewallPlan = plan
	a.sendFirewall(false)
	switch {
	case start:
		a.saveCounters()
	case repaired:
		a.countersChanged()
	}
	if start || repaired {
		a.verify.check(a.cfg)
	}
}

// countersChanged saves the counters now, or a second after the last save:
// a fight costs no disk write per reset.
func (a *agent) countersChanged() {
	if wait := time.Second - time.Since(a.countersSaved); wait <= 0 {
		a.saveCounters()
	} else {
		a.flush.Reset(wait)
	}
}

// limit asks the fight limiter of everything the plan would put back. A
// refusal holds the whole plan back until the limiter allows it (at most
// 1/repairsPerSecond): the plan is one, and applying half of it could
// leave rules pointing at a table not made yet.
func (a *agent) limit(plan fix.Plan, now time.Time) time.Duration {
	var wait time.Duration
	changed := false
	for _, k := range planKeys(plan) {
		f := a.fights[k]
		if f == nil {
			continue // nothing repaired lately: no fight
		}
		allowed, started := f.needed(now)
		if started {
			k.started(a.log)
			a.counters.Fights++
			changed = true
		}
		if !allowed {
			wait = max(wait, f.wait(now))
		}
	}
	if changed {
		a.fightsChanged()
	}
	return wait
}

// calmFights ends the fights that have been quiet for fightQuiet, and
// forgets the limiters that are full again.
func (a *agent) calmFights(now time.Time) {
	changed := false
	for k, f := range a.fights {
		if f.over(now) {
			f.active = false
			k.ended(a.log, f)
			changed = true
		}
		if f.idle(now) {
			delete(a.fights, k)
		}
	}
	if changed {
		a.fightsChanged()
	}
	a.armCalm()
}

func (a *agent) armCalm() {
	if !a.calmArmed && len(a.fights) > 0 {
		a.calmArmed = true
		a.calm.Reset(calmCheck)
	}
}

// fightsChanged puts the standing fights in the counters (status lists them).
func (a *agent) fightsChanged() {
	var fighting []string // a new slice: the counters may be on their way to disk
	for k, f := range a.fights {
		if f.active {
			fighting = append(fighting, k.String())
		}
	}
	slices.Sort(fighting)
	a.counters.Fighting = fighting
	a.countersChanged()
}

// noteWarnings logs each of the plan's warnings once when it appears and
// once when it clears, never again while it stands, and keeps the standing
// ones in the counters.
func (a *agent) noteWarnings(ws []string) {
	if slices.Equal(ws, a.warnings) {
		return
	}
	now := make(map[string]bool, len(ws))
	standing := make([]string, 0, len(ws))
	for _, w := range ws {
		if !now[w] {
			now[w] = true
			standing = append(standing, w)
		}
	}
	if slices.Equal(standing, a.warnings) {
		return
	}
	before := make(map[string]bool, len(a.warnings))
	for _, w := range a.warnings {
		before[w] = true
		if !now[w] {
			a.log.Info("warning cleared", "warning", w)
		}
	}
	for _, w := range standing {
		if !before[w] {
			a.log.Warn(w)
		}
	}
	a.warnings = standing
	a.counters.Warnings = standing
	a.countersChanged()
}

// envNow is the environment detected at start, with assume_wsl from the
// config in force (a reload may turn it on).
func (a *agent) envNow() detect.Environment {
	if a.env.WSL || !a.cfg.AssumeWSL {
		return a.env
	}
	if a.assumed == nil { // once: telling the mode may run wslinfo
		env := detect.Assume(a.Host.Sources, a.env, a.kernel.snapshot().Links)
		a.assumed = &env
	}
	return *a.assumed
}

// logChanges logs each write after it was made (never before: the log is
// not on the way to the write) and counts repairs.
func (a *agent) logChanges(causes []cause, changes []fix.Change, done time.Time) bool {
	repaired := false
	for _, ch := range changes {
		if !ch.Wrote {
			continue
		}
		repaired = true
		c := causeOf(causes, ch)
		latency := done.Sub(c.at)
		if ch.Link != "" {
			a.ownWrites[ch.Link] = ch.To
		}
		r := newRepair(ch, c, done)
		a.counters.Repairs++
		if a.counters.RepairsBy == nil {
			a.counters.RepairsBy = map[string]int{}
		}
		a.counters.RepairsBy[repairKey(ch)]++
		a.counters.LastRepair = &r
		k := changeKey(ch)
		f := a.fights[k]
		if f == nil {
			f = newFight()
			a.fights[k] = f
			a.armCalm()
		}
		f.repaired(done)
		if f.fighting() {
			continue
		}
		if ch.Link == "" {
			a.log.Info("repaired", "change", ch.String(), "cause", c.String(), "latency", latency.Round(time.Microsecond).String())
			continue
		}
		a.log.Info("repaired", "interface", ch.Link, "from", ch.Found, "to", ch.To, "reason", ch.Reason,
			"cause", c.String(), "latency", latency.Round(time.Microsecond).String())
	}
	return repaired
}

func repairKey(ch fix.Change) string {
	switch {
	case ch.Route != nil:
		return "route"
	case ch.Rule != nil:
		return "rule"
	}
	return ch.Link
}

// logFailure logs a reconcile failure once until it changes: a broken
// state directory must not flood the journal at every event.
func (a *agent) logFailure(msg string, err error) {
	text := msg + ": " + err.Error()
	if text == a.failed {
		return
	}
	a.failed = text
	var pe *detect.PatternError
	if errors.As(err, &pe) {
		a.log.Error("the config's tunnel patterns select the outer interface; changing nothing until they are fixed", "error", err)
		return
	}
	a.log.Error(msg, "error", err)
}

func (a *agent) saveCounters() {
	a.countersSaved = time.Now()
	a.counters.Config = a.cfg.Describe()
	if err := agentstatus.Write(a.Host.Store.Dir, a.counters); err != nil {
		a.log.Warn("cannot record counters", "error", err)
	}
	a.publishMetrics()
}
