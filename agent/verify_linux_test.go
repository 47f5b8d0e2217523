package agent

import (
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/fix"
)

// The agent's path checks reach the metrics and the health verdict they
// carry: a path broken under the plan in force makes wslmtu_healthy 0.
func TestSnapshotCarriesThePaths(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	c := Counters{Paths: []fix.PathCheck{
		{PathNeed: fix.PathNeed{Host: "100.64.0.2", Size: 1280}, Largest: 1280, Verdict: fix.PathOK, Checked: at},
	}}
	s := c.Snapshot("v", true, fix.Report{})
	if !s.Healthy || len(s.Paths) != 1 || !s.Paths[0].OK || s.Paths[0].Largest != 1280 || !s.Paths[0].Checked.Equal(at) {
		t.Errorf("ok path: healthy %v, paths %+v", s.Healthy, s.Paths)
	}
	c.Paths = append(c.Paths, fix.PathCheck{PathNeed: fix.PathNeed{Host: "10.8.0.2", Size: 1360}, Largest: 1280,
		Verdict: fix.PathBroken, Side: fix.SideWindows, Checked: at})
	s = c.Snapshot("v", true, fix.Report{})
	if s.Healthy || len(s.Paths) != 2 || s.Paths[1].OK || s.Paths[1].Largest != 1280 {
		t.Errorf("broken path: healthy %v, paths %+v", s.Healthy, s.Paths)
	}
}

func TestJitterStaysWithinTenPercent(t *testing.T) {
	for range 1000 {
		if d := jitter(15 * time.Minute); d < 810*time.Second || d > 990*time.Second {
			t.Fatalf("jitter(15m) = %s, outside ±10%%", d)
		}
	}
}
