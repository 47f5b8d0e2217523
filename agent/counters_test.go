package agent

import (
	"strings"
	"testing"
	"time"
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
