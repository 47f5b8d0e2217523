package fix

import (
	"slices"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// "nothing to do" is said of an empty plan that may be applied, never of a
// refused one (which says why it is not applied instead).
func TestPlanStringSaysNothingToDoOnlyWhenApplicable(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Plan
		want string
	}{
		{"empty", Plan{}, "nothing to do\n"},
		{"refused", Plan{Refused: "this is not WSL"}, "not applied: this is not WSL\n"},
		{"an action", Plan{Actions: []Action{{Link: "eth0", From: 1280, To: 1360, Reason: "r"}}}, "eth0: mtu 1280 → 1360 (r)\n"},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	p := Plan{Warnings: []string{"w"}, Notes: []string{"n"}}
	if got := p.String(); !strings.HasSuffix(got, "warning: w\nnote: n\n") {
		t.Errorf("warnings and notes: %q", got)
	}
}

// Once tailscaled's fix is adopted, later plans say whose 1360 it is; a
// 1360 wslmtu wrote itself gets no such note.
func TestPlanNamesWhoSetAnAdoptedValue(t *testing.T) {
	k := fakekernel.NewWSL(1360, 1280)
	st := observe(t, k, "nat", config.Default())
	note := "eth0 1360 was set by tailscaled's own WSL fix; 1280 is what Windows chose, and revert puts it back"
	for _, tt := range []struct {
		setBy string
		want  bool
	}{{"tailscaled", true}, {"", false}} {
		rec := recordWith(map[string]LinkRecord{"eth0": {Before: 1280, Wrote: 1360, SetBy: tt.setBy}})
		p := NewPlan(st, rec, config.Default())
		if got := slices.Contains(p.Notes, note); got != tt.want {
			t.Errorf("set by %q: notes %q", tt.setBy, p.Notes)
		}
	}
}

// eth0 at 1360 is taken for tailscaled's fix only while tailscaled is there:
// its interface or its rules.
func TestPlanAdoptsTailscaledsFixOnlyWithTailscaled(t *testing.T) {
	eth0 := detect.Link{Name: "eth0", Index: 2, MTU: 1360, Up: true}
	env := detect.Environment{WSL: true, Version: 2, NetworkingMode: detect.ModeNAT}
	ts := detect.Link{Name: "tailscale0", Index: 3, MTU: 1280, Kind: "tun", Up: true}
	for _, tt := range []struct {
		name  string
		links []detect.Link
		rules []detect.Rule
		adopt bool
	}{
		{"nothing of tailscaled", []detect.Link{eth0}, nil, false},
		{"its interface", []detect.Link{eth0, ts}, nil, true},
		{"its rules", []detect.Link{eth0}, fakekernel.TailscaledRules(4), true},
	} {
		st := detect.State{Env: env, Outer: &eth0, Links: tt.links, Rules: tt.rules}
		p := NewPlan(st, newRecord(), config.Default())
		if got := p.Adopt["eth0"] == (LinkRecord{Before: 1280, Wrote: 1360, SetBy: "tailscaled"}); got != tt.adopt {
			t.Errorf("%s: adopt %v, notes %q", tt.name, p.Adopt, p.Notes)
		}
	}
}
