package agent

import (
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
)

// The repair rate per thing fought over once something fights back: a
// burst lets ordinary flaps through at once, the rate bounds the CPU and
// the log a fight can cost.
const (
	repairBurst      = 100
	repairsPerSecond = 100
	fightQuiet       = 2 * time.Second // no resets for this long ends a fight
	// calmCheck is how often fights are looked at while any is remembered:
	// a fight's end is logged within fightQuiet + calmCheck of its last
	// reset, and a limiter that is full again is forgotten.
	calmCheck = 500 * time.Millisecond
)

// fightKey is what a fight is over: an interface's MTU, a route (the main
// table's default route and its mtu, or one of wslmtu's table) or a policy
// rule, in the words the plan uses for it.
type fightKey struct {
	kind    fightKind
	subject string
}

type fightKind uint8

const (
	fightMTU fightKind = iota
	fightRoute
	fightRule
)

func (k fightKey) String() string {
	switch k.kind {
	case fightMTU:
		return k.subject + " mtu"
	case fightRoute:
		return "route " + k.subject
	}
	return k.subject
}

func linkKey(name string) fightKey { return fightKey{fightMTU, name} }

func routeKey(r detect.Route) fightKey {
	r.MTU = 0
	return fightKey{fightRoute, r.String()}
}

func ruleKey(r detect.Rule) fightKey {
	return fightKey{fightRule, detect.Tool(r.Family) + " rule " + r.String()}
}

// changeKey is what a change the agent made puts back.
func changeKey(ch fix.Change) fightKey {
	switch {
	case ch.Route != nil:
		return routeKey(ch.Route.Route)
	case ch.Rule != nil:
		return ruleKey(ch.Rule.Rule)
	}
	return linkKey(ch.Link)
}

// planKeys are what a plan would put back.
func planKeys(p fix.Plan) []fightKey {
	keys := make([]fightKey, 0, len(p.Actions)+len(p.Routes)+len(p.Rules))
	for _, a := range p.Actions {
		keys = append(keys, linkKey(a.Link))
	}
	for _, r := range p.Routes {
		keys = append(keys, routeKey(r.Route))
	}
	for _, r := range p.Rules {
		keys = append(keys, ruleKey(r.Rule))
	}
	return keys
}

// started logs a fight's start: once, whatever it lasts.
func (k fightKey) started(log *slog.Logger) {
	switch k.kind {
	case fightMTU:
		log.Warn("something keeps resetting the mtu; repairing at a bounded rate", "interface", k.subject,
			"repairs_per_second", repairsPerSecond,
			"hint", "another tool manages this interface (a VPN client, NetworkManager, a boot script?)")
	case fightRoute:
		log.Warn("something keeps changing a route wslmtu keeps; repairing at a bounded rate", "route", k.subject,
			"repairs_per_second", repairsPerSecond,
			"hint", "another tool manages this route (a network manager, a VPN client, a script?)")
	default:
		log.Warn("something keeps changing a policy rule wslmtu keeps; repairing at a bounded rate", "rule", k.subject,
			"repairs_per_second", repairsPerSecond,
			"hint", "another tool manages the policy rules (a VPN client, a firewall manager, a script?)")
	}
}

// ended logs a fight's end: once.
func (k fightKey) ended(log *slog.Logger, f *fight) {
	attr := "interface"
	switch k.kind {
	case fightRoute:
		attr = "route"
	case fightRule:
		attr = "rule"
	}
	log.Info("the fight is over; repairing at once again", attr, k.subject,
		"resets", f.resets, "lasted", f.lastReset.Sub(f.since).Round(time.Millisecond).String())
}

// fight tracks one thing whose repairs keep being undone. The limiter is
// the whole policy: a burst of repairs goes through at once, beyond it
// repairs continue at a bounded rate until the resets stop.
type fight struct {
	limiter   *rate.Limiter
	active    bool
	since     time.Time
	resets    int
	lastReset time.Time
}

func newFight() *fight {
	return &fight{limiter: rate.NewLimiter(rate.Limit(repairsPerSecond), repairBurst)}
}

// fighting says whether repairs are being rate-limited now; their log lines
// are left out then, the fight's start and end say it all.
func (f *fight) fighting() bool { return f != nil && f.active }

// repaired takes a token for a repair that was just made.
func (f *fight) repaired(now time.Time) { f.limiter.AllowN(now, 1) }

// needed is told that a plan needs the thing put back now. It says whether
// that may happen at once, and whether a fight starts with this refusal.
func (f *fight) needed(now time.Time) (allowed, started bool) {
	f.lastReset = now
	if f.active {
		f.resets++
	}
	if f.limiter.TokensAt(now) >= 1 {
		return true, false
	}
	if f.active {
		return false, false
	}
	f.active, f.since, f.resets = true, now, 1
	return false, true
}

// over says whether an active fight has been quiet long enough to end.
func (f *fight) over(now time.Time) bool { return f.active && now.Sub(f.lastReset) > fightQuiet }

// idle says whether nothing about it needs remembering: no fight, and a
// full burst available again.
func (f *fight) idle(now time.Time) bool {
	return !f.active && f.limiter.TokensAt(now) >= repairBurst
}

// wait is how long until the next repair is allowed.
func (f *fight) wait(now time.Time) time.Duration {
	r := f.limiter.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}
