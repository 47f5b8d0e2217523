package agentstatus

import (
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/fix"
)

// status lists the fights and the warnings standing while the agent runs.
func TestStatusListsWhatStands(t *testing.T) {
	s := Status{Known: true, Running: true, Counters: Counters{PID: 42, Started: time.Unix(0, 0), Repairs: 2, Fights: 1,
		Fighting: []string{"route default via 172.28.0.1 dev eth0"},
		Warnings: []string{"outer_scope = \"tunnel\" cannot keep other traffic at 1280: wg0's own packets cannot be recognised"},
	}}
	got := s.String()
	for _, want := range []string{
		"repairs: 2, fights: 1",
		"fighting over route default via 172.28.0.1 dev eth0: something keeps undoing it",
		"the agent warns: outer_scope = \"tunnel\" cannot keep other traffic at 1280: wg0's own packets",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}
	s.Running = false
	if got := s.String(); strings.Contains(got, "fighting") || strings.Contains(got, "warns") {
		t.Errorf("a stopped agent's fights and warnings listed:\n%s", got)
	}
}

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
