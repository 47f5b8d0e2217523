package fix

import (
	"errors"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// A revert record that cannot be saved before the first step (a full disk;
// here a state directory that cannot be made) leaves every step not done,
// says so, and writes nothing: fix used to print the plan as if applied.
func TestApplyWithoutARecordDoesNothingAndSaysSo(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "nat", config.Default()) // outer_scope tunnel: rules and a table first
	p := w.plan()
	k.Writes()
	_, changes, err := Apply(p, w.record(), k, Store{Dir: "/dev/null/state"})
	var ae *ApplyError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "saving the revert record") {
		t.Fatalf("err = %v, want an ApplyError about the record", err)
	}
	if want := p.Changes(); strings.Join(ae.Pending, "\n") != strings.Join(want, "\n") {
		t.Errorf("not done:\n%s\nwant every step:\n%s", strings.Join(ae.Pending, "\n"), strings.Join(want, "\n"))
	}
	if len(changes) != 0 || len(k.Writes()) != 0 {
		t.Errorf("changed %v, wrote %v", changes, k.Writes())
	}
	r := Report{Plan: p, NotDone: ae.Pending}
	for _, line := range strings.Split(strings.TrimSpace(r.Outcome()), "\n") {
		if !strings.HasPrefix(line, "not done: ") && !strings.HasPrefix(line, "warning: ") && !strings.HasPrefix(line, "note: ") {
			t.Errorf("the outcome shows %q as done:\n%s", line, r.Outcome())
		}
	}
}
