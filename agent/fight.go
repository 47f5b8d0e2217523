package agent

import (
	"log/slog"
	"time"

	"golang.org/x/time/rate"
)

// The repair rate per interface once something fights back: a burst lets
// ordinary flaps through at once, the rate bounds the CPU a fight can cost.
const (
	repairBurst      = 100
	repairsPerSecond = 100
	fightQuiet       = 2 * time.Second // no resets for this long ends a fight
)

// fight tracks one interface whose repairs keep being undone. The limiter
// is the whole policy: a burst of repairs goes through at once, beyond it
// repairs continue at a bounded rate until the resets stop.
type fight struct {
	limiter   *rate.Limiter
	count     int // fights so far on this interface
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

// allow reports whether a reset seen now may be repaired at once. It logs
// once when a fight starts, and once when it ends.
func (f *fight) allow(now time.Time, log *slog.Logger, link string) bool {
	if f.active && now.Sub(f.lastReset) > fightQuiet {
		log.Info("the fight is over; repairing at once again", "interface", link,
			"resets", f.resets, "lasted", f.lastReset.Sub(f.since).Round(time.Millisecond).String())
		f.active = false
	}
	f.lastReset = now
	if f.active {
		f.resets++
	}
	if f.limiter.TokensAt(now) >= 1 {
		return true
	}
	if !f.active {
		f.active, f.since, f.resets = true, now, 1
		f.count++
		log.Warn("something keeps resetting the mtu; repairing at a bounded rate", "interface", link,
			"repairs_per_second", repairsPerSecond,
			"hint", "another tool manages this interface (a VPN client, NetworkManager, a boot script?)")
	}
	return false
}

// wait is how long until the next repair is allowed.
func (f *fight) wait(now time.Time) time.Duration {
	r := f.limiter.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}
