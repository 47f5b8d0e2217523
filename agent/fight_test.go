package agent

import (
	"testing"
	"time"
)

func TestFightBoundsRepairRateAndEnds(t *testing.T) {
	f := newFight()
	now := time.Unix(1000, 0)
	allowed, starts := 0, 0
	// A reset every 2 ms for 3 s, each allowed one repaired at once.
	for i := 0; i < 1500; i++ {
		now = now.Add(2 * time.Millisecond)
		ok, started := f.needed(now)
		if started {
			starts++
		}
		if ok {
			allowed++
			f.repaired(now)
		} else if f.wait(now) <= 0 {
			t.Fatalf("refused a repair but gave no wait at reset %d", i)
		}
	}
	maxAllowed := repairBurst + 3*repairsPerSecond + 1
	if allowed > maxAllowed || allowed < 3*repairsPerSecond {
		t.Errorf("%d repairs in a 3s fight, want about %d", allowed, maxAllowed)
	}
	if starts != 1 || !f.fighting() {
		t.Errorf("the fight started %d times (fighting %v), want once", starts, f.fighting())
	}
	if f.over(now.Add(fightQuiet)) {
		t.Error("over before fightQuiet of quiet")
	}
	// Quiet for longer than fightQuiet: over, and then idle once the burst
	// is back; the next reset is repaired at once.
	now = now.Add(fightQuiet + time.Second)
	if !f.over(now) {
		t.Fatal("not over after fightQuiet of quiet")
	}
	f.active = false
	if !f.idle(now) {
		t.Error("not idle with a full burst and no fight")
	}
	if ok, started := f.needed(now); !ok || started {
		t.Errorf("a reset after the fight: allowed %v, started %v", ok, started)
	}
}

// The limiter allows a repair as soon as a whole token is back, not later.
func TestFightAllowsTheTokenAsItComes(t *testing.T) {
	f := newFight()
	now := time.Unix(1000, 0)
	f.limiter.AllowN(now, repairBurst)
	if ok, started := f.needed(now); ok || !started {
		t.Fatalf("an empty limiter: allowed %v, fight started %v; want refused, started", ok, started)
	}
	now = now.Add(time.Second / repairsPerSecond)
	if ok, _ := f.needed(now); !ok {
		t.Errorf("refused with one token back (%v)", f.limiter.TokensAt(now))
	}
}
