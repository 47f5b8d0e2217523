package fix

import (
	"strings"
	"testing"
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
