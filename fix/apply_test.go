package fix

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// The record keeps, per interface, what was there before wslmtu and what
// wslmtu wrote; repairing a known value costs no record write.
func TestApplyRecordsBeforeAndWrote(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "nat", scopeCfg(config.RaiseOuter, config.ScopeAll))
	if got := w.apply(); strings.Join(got, ";") != "eth0 mtu 1360" {
		t.Fatalf("writes %q", got)
	}
	if r := w.record().Links["eth0"]; r != (LinkRecord{Before: 1280, Wrote: 1360}) {
		t.Fatalf("record %+v", r)
	}
	stat := func() os.FileInfo { fi, _ := os.Stat(w.store.RecordPath()); return fi }
	before := stat()
	k.Reset("eth0", 1280)
	if got := w.apply(); strings.Join(got, ";") != "eth0 mtu 1360" {
		t.Fatalf("repair writes %q", got)
	}
	if after := stat(); !after.ModTime().Equal(before.ModTime()) {
		t.Error("a repair of a recorded value rewrote the record")
	}
	// An equal MTU is never written again.
	if got := w.apply(); len(got) != 0 {
		t.Errorf("a second fix wrote %q", got)
	}
	// WSL pushes 1300: that is the value revert restores from now on.
	k.Reset("eth0", 1300)
	w.apply()
	if r := w.record().Links["eth0"]; r != (LinkRecord{Before: 1300, Wrote: 1360}) {
		t.Errorf("after WSL pushed 1300: record %+v", r)
	}
	if got := strings.Join(w.revert(), "\n"); got != "eth0: mtu 1360 → 1300 (the value before wslmtu changed it)" || k.MTU("eth0") != 1300 {
		t.Errorf("revert: %q, eth0 %d", got, k.MTU("eth0"))
	}
	if rec := w.record(); !rec.Empty() {
		t.Errorf("record not cleared: %+v", rec)
	}
}

func TestRevertForgetsVanishedLinks(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "nat", withStrategy(config.LowerTunnel))
	w.apply()
	k.DeleteLink("tailscale0")
	got := w.revert()
	if len(got) != 1 || !strings.Contains(got[0], "tailscale0: no longer exists") {
		t.Fatalf("reverted = %q", got)
	}
}

func TestRevertOfALoweredTunnelSaysIPv6IsGone(t *testing.T) {
	r := Reverted{Link: "tailscale0", From: 1200, To: 1280}
	if !strings.Contains(r.String(), "lost its IPv6 addresses") {
		t.Errorf("revert line does not warn: %s", r)
	}
	if r := (Reverted{Link: "eth0", From: 1360, To: 1280}); strings.Contains(r.String(), "IPv6") {
		t.Errorf("revert of a raised eth0 warns about IPv6: %s", r)
	}
}

// A record that is not one is an error naming the file,
// never silently an empty record; version 1 is migrated.
func TestLoadRecordIsStrict(t *testing.T) {
	for text, want := range map[string]string{
		`{}`:                             "it has no version",
		`null`:                           "not a JSON object",
		`[]`:                             "not a JSON object",
		`{"version":1}`:                  `version 1 without "original_mtu"`,
		`{"version":2}`:                  `version 2 without "links"`,
		`{"version":7,"links":{}}`:       "version 7 was written by a newer wslmtu",
		`{"version":0}`:                  "version 0 is unknown",
		`{"version":2,"links":{},"x":1}`: `unknown field "x"`,
		`{"version":2,"links":{"eth0":{"before":-12,"wrote":1360}}}`: "impossible",
		`{half`: "invalid character",
	} {
		store := Store{Dir: t.TempDir()}
		os.WriteFile(store.RecordPath(), []byte(text), 0o644)
		_, found, err := store.LoadRecord()
		var de *DamagedError
		if !errors.As(err, &de) || !found || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), store.RecordPath()) {
			t.Errorf("%s: err = %v, want a damaged record saying %q", text, err, want)
		}
	}
	store := Store{Dir: t.TempDir()}
	os.WriteFile(store.RecordPath(), []byte(`{"version":1,"original_mtu":{"eth0":1280}}`), 0o644)
	rec, found, err := store.LoadRecord()
	if err != nil || !found || rec.Links["eth0"] != (LinkRecord{Before: 1280}) {
		t.Errorf("version 1: %+v %v %v", rec, found, err)
	}
	if _, found, err := (Store{Dir: t.TempDir()}).LoadRecord(); found || err != nil {
		t.Errorf("no record: found %v, err %v", found, err)
	}
}

// A damaged record stops fix before it changes anything, and the report
// lists the plan as not done (item 10: fix printed the change as if made).
func TestFixWithADamagedRecordChangesNothing(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	h := hostOn(t, k, "nat")
	os.WriteFile(h.Store.RecordPath(), []byte(`{}`), 0o644)
	r, err := h.Fix(config.Default())
	var de *DamagedError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v", err)
	}
	if len(k.Writes()) != 0 || len(r.Changes) != 0 {
		t.Errorf("changed %v", r.Changes)
	}
	if out := r.Outcome(); !strings.Contains(out, "not done: eth0: mtu 1280 → 1360") {
		t.Errorf("outcome:\n%s", out)
	}
}

// A step that fails leaves the rest not done, and says which.
func TestApplyReportsWhatWasNotDone(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "nat", config.Default())
	p := w.plan()
	k.DeleteLink("eth0") // vanishes, with its routes, between the plan and the writes
	_, changes, err := Apply(p, w.record(), k, w.store)
	var ae *ApplyError
	if !errors.As(err, &ae) || len(ae.Pending) != 2 || !strings.HasPrefix(ae.Pending[0], "route default via 172.28.0.1 dev eth0: mtu 1280") ||
		!strings.HasPrefix(ae.Pending[1], "eth0: mtu 1280 → 1360") {
		t.Fatalf("err = %v", err)
	}
	if len(changes) != 3 {
		t.Errorf("done before the failure: %v", changes)
	}
	// What was done is in the record, so revert can undo it.
	if rec := w.record(); rec.Policy == nil || len(rec.Policy.Rules) != 2 || len(rec.Policy.Routes) != 1 {
		t.Errorf("record after a partial apply: %+v", rec)
	}
}
