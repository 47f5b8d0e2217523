package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestFightBoundsRepairRateAndEnds(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	f := newFight()
	now := time.Unix(1000, 0)
	allowed := 0
	// A reset every 2 ms for 3 s, each allowed one repaired at once.
	for i := 0; i < 1500; i++ {
		now = now.Add(2 * time.Millisecond)
		if f.allow(now, log, "eth0") {
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
	if got := strings.Count(logs.String(), "something keeps resetting"); got != 1 {
		t.Errorf("fight start logged %d times, want once:\n%s", got, logs.String())
	}
	// Quiet for longer than fightQuiet: the next reset is repaired at once.
	now = now.Add(fightQuiet + time.Second)
	if !f.allow(now, log, "eth0") {
		t.Error("a reset after the fight was not repaired at once")
	}
	if !strings.Contains(logs.String(), "the fight is over") || f.count != 1 {
		t.Errorf("fight end not logged (count %d):\n%s", f.count, logs.String())
	}
}
