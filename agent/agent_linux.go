// Package agent is the long-running loop behind `wslmtu run`: it follows the
// kernel's link and route events and re-applies the plan whenever something
// (WSL, tailscaled, another tool) undoes it. It only decides when; detect,
// fix.NewPlan and fix.Apply decide what.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/fsnotify/fsnotify"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
)

// Options wire the agent to one host (or, in tests, one namespace).
type Options struct {
	Config     config.Config
	ConfigPath string
	// Overlay re-applies the command-line flags to a reloaded config file,
	// so flags keep winning after a reload. It validates the result.
	Overlay func(config.Config) (config.Config, error)
	Host    fix.Host
	// Netns is the namespace to follow; nil follows the agent's own.
	Netns  *netns.NsHandle
	Logger *slog.Logger
	// ReceiveBufferSize of the netlink sockets; 0 picks a large one. Tests
	// make it tiny to force ENOBUFS.
	ReceiveBufferSize int
	// Notify sends sd_notify states; nil uses systemd's socket when present.
	Notify func(state string)
	// Ready is closed after the first reconcile (tests wait on it).
	Ready chan<- struct{}
	// Resync asks for a full look now: the config is read again and the MSS
	// rules are checked (SIGHUP, `systemctl reload wslmtu`).
	Resync <-chan struct{}
	// MSSResyncInterval is how often the MSS rules are checked while
	// clamping is on; 0 means once a minute.
	MSSResyncInterval time.Duration
}

type agent struct {
	Options
	cfg      config.Config
	env      detect.Environment
	log      *slog.Logger
	counters Counters
	fights   map[string]*fight
	// ownWrites are MTUs the agent just wrote: their RTM_NEWLINK echoes must
	// not look like somebody else's change.
	ownWrites map[string]int
	pending   []event
	retry     *time.Timer
	// The counters file is rewritten at most once a second, and only after
	// a change, so a fight costs no disk writes per reset and idle costs none.
	countersSaved time.Time
	flush         *time.Timer
	// mssKey is the MSS part last synced; netfilter emits no netlink events,
	// so the rules are re-checked when that part changes and once a minute.
	mssKey    string
	mssTicker *time.Ticker
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

type event struct {
	at    time.Time
	cause string
}

// Run reconciles once, then follows the kernel until ctx is done.
func Run(ctx context.Context, opts Options) error {
	a := &agent{Options: opts, cfg: opts.Config, log: opts.Logger,
		fights: map[string]*fight{}, ownWrites: map[string]int{}}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.Notify == nil {
		a.Notify = func(state string) { daemon.SdNotify(false, state) }
	}
	a.counters = Counters{PID: os.Getpid(), Started: time.Now(), Config: a.cfg.Describe()}
	a.retry = time.NewTimer(time.Hour)
	a.retry.Stop()
	a.flush = time.NewTimer(time.Hour)
	a.flush.Stop()

	first, err := detect.Observe(a.Host.Sources, a.Host.Links, a.cfg)
	if err != nil {
		return err
	}
	a.env = first.Env

	subs, err := a.subscribe()
	if err != nil {
		return err
	}
	defer func() { subs.close() }() // the latest subscriptions, not the first

	watcher, configEvents := a.watchConfig()
	if watcher != nil {
		defer watcher.Close()
	}

	a.reconcile(event{at: time.Now(), cause: "start"})
	a.Notify(daemon.SdNotifyReady)
	if a.Ready != nil {
		close(a.Ready)
	}
	a.log.Info("following link and route changes", "config", a.cfg.Describe())

	if a.MSSResyncInterval <= 0 {
		a.MSSResyncInterval = mssResyncInterval
	}
	a.mssTicker = time.NewTicker(a.MSSResyncInterval)
	defer a.mssTicker.Stop()
	a.armMSSResync()

	var watchdog <-chan time.Time
	if interval, err := daemon.SdWatchdogEnabled(false); err == nil && interval > 0 {
		// Pinging from this loop, not a goroutine of its own, means a wedged
		// loop gets the agent restarted.
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		watchdog = t.C
	}

	for {
		select {
		case <-ctx.Done():
			return a.stop()
		case u, ok := <-subs.links:
			if !ok {
				subs = a.resubscribe(subs)
				continue
			}
			a.onLink(u)
		case u, ok := <-subs.routes:
			if !ok {
				subs = a.resubscribe(subs)
				continue
			}
			a.onRoute(u)
		case ev := <-configEvents:
			if filepath.Clean(ev.Name) == filepath.Clean(a.ConfigPath) &&
				ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Remove|fsnotify.Rename) != 0 {
				a.reloadConfig()
			}
		case <-a.Resync:
			a.log.Info("resync requested")
			a.reloadConfig()
			a.mssKey = ""
			a.pending = append(a.pending, event{at: time.Now(), cause: "resync requested"})
		case <-a.retry.C:
			a.pending = append(a.pending, event{at: time.Now(), cause: "rate-limited repair"})
		case <-a.flush.C:
			a.saveCounters()
		case <-a.mssTicker.C:
			a.mssKey = "" // force a look at the firewall
			a.pending = append(a.pending, event{at: time.Now(), cause: "periodic MSS rule check"})
		case <-watchdog:
			a.Notify(daemon.SdNotifyWatchdog)
		}
		// No fixed debounce: take whatever else is already queued, then
		// reconcile once for all of it.
		a.drain(subs)
		if len(a.pending) > 0 {
			first := a.pending[0]
			a.pending = a.pending[:0]
			a.reconcile(first)
		}
	}
}

func (a *agent) drain(subs *subscriptions) {
	for {
		select {
		case u, ok := <-subs.links:
			if !ok {
				return // the main loop resubscribes
			}
			a.onLink(u)
		case u, ok := <-subs.routes:
			if !ok {
				return
			}
			a.onRoute(u)
		default:
			return
		}
	}
}

func (a *agent) stop() error {
	a.Notify(daemon.SdNotifyStopping)
	if a.cfg.RevertOnStop {
		reverted, err := a.Host.Revert()
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
	a.saveCounters()
	a.flush.Stop()
	return nil
}

// relevant says whether an interface can change the plan: the outer
// interface, anything matching the tunnel patterns, and eth* (WSL recreates
// eth0 on restart, and a new default route may move to another one).
func (a *agent) relevant(name string) bool {
	if name == "" {
		return false
	}
	return name == a.cfg.OuterInterface || strings.HasPrefix(name, "eth") || a.cfg.IsTunnel(name)
}

func (a *agent) onLink(u netlink.LinkUpdate) {
	attrs := u.Link.Attrs()
	if !a.relevant(attrs.Name) {
		return
	}
	now := time.Now()
	if u.Header.Type == unix.RTM_DELLINK {
		delete(a.ownWrites, attrs.Name)
		a.pending = append(a.pending, event{at: now, cause: attrs.Name + " removed"})
		return
	}
	if want, ok := a.ownWrites[attrs.Name]; ok && want == attrs.MTU {
		delete(a.ownWrites, attrs.Name)
		return
	}
	ev := event{at: now, cause: fmt.Sprintf("%s mtu is %d", attrs.Name, attrs.MTU)}
	if f := a.fights[attrs.Name]; f != nil && !f.allow(now, a.log, attrs.Name) {
		a.counters.Fights = a.totalFights()
		a.scheduleRetry(f.wait(now))
		return
	}
	a.pending = append(a.pending, ev)
}

func (a *agent) onRoute(u netlink.RouteUpdate) {
	if detect.IsDefaultRoute(u.Dst) && u.Table == unix.RT_TABLE_MAIN {
		a.pending = append(a.pending, event{at: time.Now(), cause: "default route changed"})
	}
}

func (a *agent) scheduleRetry(d time.Duration) {
	if d <= 0 {
		d = time.Millisecond
	}
	a.retry.Reset(d)
}

func (a *agent) totalFights() int {
	n := 0
	for _, f := range a.fights {
		n += f.count
	}
	return n
}

// reconcile observes afresh, plans and applies only what differs.
func (a *agent) reconcile(cause event) {
	a.counters.Reconciles++
	lock, err := a.Host.Store.Lock()
	if err != nil {
		a.log.Error("cannot lock the state directory", "error", err)
		return
	}
	env := a.env
	if !env.WSL && a.cfg.AssumeWSL { // assume_wsl may come with a reloaded config
		env.WSL, env.Version, env.Assumed = true, 2, true
	}
	st, err := detect.ObserveLinks(env, a.Host.Links, a.cfg)
	if err != nil {
		lock.Release()
		a.log.Error("observing the host failed", "cause", cause.cause, "error", err)
		return
	}
	plan := fix.NewPlan(st, a.cfg)
	changes, err := fix.Apply(plan, a.Host.MTUs, a.Host.Store)
	done := time.Now()
	lock.Release()
	if cause.cause == "start" && plan.Refused != "" {
		a.log.Warn("not applying: " + plan.Refused)
	}
	for _, w := range plan.Warnings {
		a.log.Warn(w)
	}
	repaired := false
	for _, c := range changes {
		if !c.Wrote {
			continue
		}
		repaired = true
		a.ownWrites[c.Link] = c.To
		r := Repair{Time: done, Interface: c.Link, From: c.Found, To: c.To, Cause: cause.cause, Latency: done.Sub(cause.at)}
		a.counters.Repairs++
		if a.counters.RepairsBy == nil {
			a.counters.RepairsBy = map[string]int{}
		}
		a.counters.RepairsBy[c.Link]++
		a.counters.LastRepair = &r
		f := a.fights[c.Link]
		if f == nil {
			f = newFight()
			a.fights[c.Link] = f
		}
		f.repaired(done)
		if f.fighting() {
			continue
		}
		a.log.Info("repaired", "interface", c.Link, "from", c.Found, "to", c.To, "reason", c.Reason,
			"cause", cause.cause, "latency", r.Latency.Round(time.Microsecond).String())
	}
	if err != nil {
		a.log.Error("applying the plan failed", "cause", cause.cause, "error", err)
	}
	a.syncMSS(plan, cause)
	switch {
	case cause.cause == "start":
		a.saveCounters()
	case repaired:
		if wait := time.Second - time.Since(a.countersSaved); wait <= 0 {
			a.saveCounters()
		} else {
			a.flush.Reset(wait)
		}
	}
}

const mssResyncInterval = time.Minute

// syncMSS keeps the MSS rules in line when clamping is on (or our chains
// must go). Only a changed MSS part or the periodic check reads iptables.
func (a *agent) syncMSS(plan fix.Plan, cause event) {
	if plan.MSS == nil || plan.Refused != "" {
		a.mssKey = ""
		return
	}
	key := fmt.Sprint(*plan.MSS)
	if key == a.mssKey {
		return
	}
	change, err := a.Host.SyncMSS(&plan)
	if err != nil {
		if errors.Is(err, fix.ErrMSSUnavailable) {
			a.mssKey = key // permanent on this kernel: say it once per change
			a.log.Warn(err.Error())
			return
		}
		a.log.Error("MSS clamping failed", "cause", cause.cause, "error", err)
		return
	}
	a.mssKey = key
	if change != nil && len(change.Done) > 0 {
		a.log.Info("MSS rules", "change", change.String(), "cause", cause.cause)
	}
}

func (a *agent) saveCounters() {
	a.countersSaved = time.Now()
	a.counters.Config = a.cfg.Describe()
	if err := writeCounters(a.Host.Store.Dir, a.counters); err != nil {
		a.log.Warn("cannot record counters", "error", err)
	}
}

// subscriptions are the link and route event streams. Address changes are
// not followed: one that moves the default route shows as a route change.
// vishvananda/netlink closes a channel on any socket error (ENOBUFS under a
// burst, for one), so a closed channel means: subscribe again, resync in full.
type subscriptions struct {
	links  chan netlink.LinkUpdate
	routes chan netlink.RouteUpdate
	done   chan struct{}
	closed sync.Once
}

func (s *subscriptions) close() { s.closed.Do(func() { close(s.done) }) }

func (a *agent) subscribe() (*subscriptions, error) {
	size := a.ReceiveBufferSize
	if size == 0 {
		size = 4 << 20
	}
	s := &subscriptions{
		links:  make(chan netlink.LinkUpdate, 1024),
		routes: make(chan netlink.RouteUpdate, 256),
		done:   make(chan struct{}),
	}
	onError := func(err error) {
		select {
		case <-s.done: // closed by us: the socket's end is no failure
		default:
			a.log.Warn("netlink subscription failed; subscribing again", "error", err)
		}
	}
	if err := netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{
		Namespace: a.Netns, ErrorCallback: onError, ReceiveBufferSize: size, ReceiveBufferForceSize: true}); err != nil {
		close(s.done)
		return nil, fmt.Errorf("subscribing to link changes: %w", err)
	}
	if err := netlink.RouteSubscribeWithOptions(s.routes, s.done, netlink.RouteSubscribeOptions{
		Namespace: a.Netns, ErrorCallback: onError, ReceiveBufferSize: size, ReceiveBufferForceSize: true}); err != nil {
		close(s.done)
		return nil, fmt.Errorf("subscribing to route changes: %w", err)
	}
	return s, nil
}

// resubscribe never gives up: an agent that stops listening is worse than
// one that retries, so it backs off up to a second between attempts.
func (a *agent) resubscribe(old *subscriptions) *subscriptions {
	old.close()
	a.counters.Resubscribe++
	delay := time.Millisecond
	for {
		s, err := a.subscribe()
		if err == nil {
			a.pending = append(a.pending, event{at: time.Now(), cause: "resync after a netlink error"})
			a.saveCounters()
			return s
		}
		a.log.Error("subscribing again failed", "error", err, "retry_in", delay.String())
		time.Sleep(delay)
		delay = min(delay*2, time.Second)
	}
}

func (a *agent) watchConfig() (*fsnotify.Watcher, <-chan fsnotify.Event) {
	if a.ConfigPath == "" {
		return nil, nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		a.log.Warn("config changes will need a restart", "error", err)
		return nil, nil
	}
	// The directory, not the file: editors save by replacing the file, and
	// a watch on the old inode would go silent.
	dir := filepath.Dir(a.ConfigPath)
	if err := w.Add(dir); err != nil {
		a.log.Warn("config changes will need a restart", "directory", dir, "error", err)
		w.Close()
		return nil, nil
	}
	go func() {
		for err := range w.Errors {
			a.log.Warn("watching the config", "error", err)
		}
	}()
	return w, w.Events
}

func (a *agent) reloadConfig() {
	if a.ConfigPath == "" {
		return
	}
	cfg, err := config.Load(a.ConfigPath)
	if err == nil && a.Overlay != nil {
		cfg, err = a.Overlay(cfg)
	}
	if err != nil {
		var cfgErr *config.Error
		if errors.As(err, &cfgErr) {
			a.log.Error("invalid config; keeping the previous one", "error", cfgErr.Error())
		} else {
			a.log.Error("cannot read the config; keeping the previous one", "error", err)
		}
		return
	}
	if cfg.Describe() == a.cfg.Describe() && fmt.Sprint(cfg) == fmt.Sprint(a.cfg) {
		return
	}
	a.cfg = cfg
	a.mssKey = ""
	a.armMSSResync()
	a.log.Info("config reloaded", "config", cfg.Describe())
	a.pending = append(a.pending, event{at: time.Now(), cause: "config reloaded"})
}
