package fix

import (
	"strings"
	"testing"
)

// Each thing not in force is one problem, in its own words.
func TestHealthProblemsTable(t *testing.T) {
	act := Action{Link: "eth0", From: 1280, To: 1360, Reason: "r"}
	for _, tt := range []struct {
		name string
		r    Report
		want string
	}{
		{"in force", Report{}, "healthy"},
		{"refused", Report{Plan: Plan{Refused: "not WSL", Actions: []Action{act}}}, "not managed: wslmtu changes nothing on this host"},
		{"a damaged record", Report{RecordErr: "damaged"}, "unhealthy: damaged"},
		{"one change", Report{Plan: Plan{Actions: []Action{act}}}, "unhealthy: 1 change pending"},
		{"two changes", Report{Plan: Plan{Actions: []Action{act, act}}}, "unhealthy: 2 changes pending"},
		{"our chains left with clamping off", Report{Plan: Plan{MSS: &MSSPlan{State: MSSPresent}}},
			"unhealthy: mss_clamp is off but our MSS chains are still there"},
		{"rules not in place", Report{Plan: Plan{MSS: &MSSPlan{Clamp: true, State: MSSAbsent}}}, "unhealthy: the MSS rules are not in place"},
		{"rules in place", Report{Plan: Plan{MSS: &MSSPlan{Clamp: true, State: MSSInSync}}}, "healthy"},
		{"a refused clamp", Report{Plan: Plan{MSS: &MSSPlan{Clamp: true, State: MSSUnavailable, Refused: "no outer", Detail: "d"}}},
			"unhealthy: mss_clamp is on but cannot be applied: no outer"},
		{"no iptables", Report{Plan: Plan{MSS: &MSSPlan{Clamp: true, State: MSSUnavailable, Detail: "no iptables"}}},
			"unhealthy: mss_clamp is on but cannot be applied: no iptables"},
		{"a broken path", Report{Paths: []PathCheck{{PathNeed: PathNeed{Host: "h"}, Verdict: PathBroken, Side: SideWindows, Evidence: "e"}}},
			"unhealthy: the path to h is broken (likely side: " + string(SideWindows) + "): e"},
		{"a path that carries", Report{Paths: []PathCheck{{PathNeed: PathNeed{Host: "h"}, Verdict: PathOK}}}, "healthy"},
	} {
		h := tt.r.Health()
		if got := h.String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		if h.Healthy != strings.HasPrefix(tt.want, "healthy") && tt.r.Plan.Refused == "" {
			t.Errorf("%s: Healthy = %v", tt.name, h.Healthy)
		}
	}
}

// Outcome is the plan's own words until something was done or not done.
func TestOutcomeTable(t *testing.T) {
	p := Plan{Actions: []Action{{Link: "eth0", From: 1280, To: 1360, Reason: "r"}}, Warnings: []string{"w"}, Notes: []string{"n"}}
	for _, tt := range []struct {
		name string
		r    Report
		want string
	}{
		{"dry run", Report{Plan: p}, p.String()},
		{"written", Report{Plan: p, Changes: []Change{{Action: p.Actions[0], Found: 1280, Wrote: true}}},
			"eth0: mtu 1280 → 1360 (r)\nwarning: w\nnote: n\n"},
		{"not done", Report{Plan: p, NotDone: []string{"eth0: mtu 1280 → 1360 (r)"}},
			"not done: eth0: mtu 1280 → 1360 (r)\nwarning: w\nnote: n\n"},
		{"mss only", Report{Plan: p, MSS: &MSSChange{Backend: "nft", Clamp: true}},
			"mss clamp: rules already in place (iptables nft)\nwarning: w\nnote: n\n"},
	} {
		if got := tt.r.Outcome(); got != tt.want {
			t.Errorf("%s:\n%s\nwant\n%s", tt.name, got, tt.want)
		}
	}
}
