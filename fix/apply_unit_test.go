package fix

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
)

// callKernel is a Kernel that only records the calls it gets, and fails the
// ones named in fail: Apply's bookkeeping is tested on hand-made plans,
// without a planner or a kernel model in between.
type callKernel struct {
	calls []string
	fail  map[string]error // by operation: "mtu", "route-mtu", "add-route", "del-route", "add-rule", "del-rule"
}

func (k *callKernel) do(op, what string) error {
	k.calls = append(k.calls, op+" "+what)
	return k.fail[op]
}

func (k *callKernel) SetMTU(l detect.Link, mtu int) error {
	return k.do("mtu", fmt.Sprintf("%s %d", l.Name, mtu))
}
func (k *callKernel) SetRouteMTU(r detect.Route, mtu int) error {
	return k.do("route-mtu", fmt.Sprintf("%s %d", r, mtu))
}
func (k *callKernel) AddRoute(r detect.Route) error    { return k.do("add-route", r.String()) }
func (k *callKernel) DeleteRoute(r detect.Route) error { return k.do("del-route", r.String()) }
func (k *callKernel) AddRule(r detect.Rule) error {
	return k.do("add-rule", detect.Tool(r.Family)+" "+r.String())
}
func (k *callKernel) DeleteRule(r detect.Rule) error {
	return k.do("del-rule", detect.Tool(r.Family)+" "+r.String())
}

var _ Kernel = (*callKernel)(nil)

// noDisk is a state directory that cannot be written: a save that Apply
// should not make shows as an error.
var noDisk = Store{Dir: "/dev/null/state"}

var (
	ourTable  = 52000
	ourRule   = detect.Rule{Family: 4, Priority: 5200, Table: 52000, SuppressPrefixlen: -1}
	ourRoute  = detect.Route{Family: 4, Table: 52000, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}
	mainRoute = detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}
)

func recordWith(links map[string]LinkRecord) Record {
	rec := newRecord()
	for name, lr := range links {
		rec.Links[name] = lr
	}
	return rec
}

// The record entry of an interface follows what Apply writes: a new one
// before the write, an update of Wrote after it, and none once the value
// before wslmtu is put back.
func TestApplyLinkRecordTable(t *testing.T) {
	tests := []struct {
		name   string
		have   map[string]LinkRecord
		action Action
		want   map[string]LinkRecord
	}{
		{"first change: before and wrote", nil,
			Action{Link: "eth0", From: 1280, To: 1360},
			map[string]LinkRecord{"eth0": {Before: 1280, Wrote: 1360}}},
		{"a new target over our own value: before stays", map[string]LinkRecord{"eth0": {Before: 1280, Wrote: 1360}},
			Action{Link: "eth0", From: 1360, To: 1400},
			map[string]LinkRecord{"eth0": {Before: 1280, Wrote: 1400}}},
		{"a new target over somebody else's value: theirs is the before now", map[string]LinkRecord{"eth0": {Before: 1280, Wrote: 1360}},
			Action{Link: "eth0", From: 1300, To: 1400},
			map[string]LinkRecord{"eth0": {Before: 1300, Wrote: 1400}}},
		{"putting back the value before: the entry goes", map[string]LinkRecord{"eth0": {Before: 1280, Wrote: 1360}},
			Action{Link: "eth0", From: 1360, To: 1280},
			map[string]LinkRecord{}},
		{"the value before over somebody else's: not a restore, theirs is the before", map[string]LinkRecord{"eth0": {Before: 1280, Wrote: 1360}},
			Action{Link: "eth0", From: 1300, To: 1280},
			map[string]LinkRecord{"eth0": {Before: 1300, Wrote: 1280}}},
		{"the minimum IPv4 MTU is written", nil,
			Action{Link: "eth0", From: 1280, To: 68},
			map[string]LinkRecord{"eth0": {Before: 1280, Wrote: 68}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := Store{Dir: t.TempDir()}
			k := &callKernel{}
			got, changes, err := Apply(Plan{Actions: []Action{tt.action}}, recordWith(tt.have), k, store)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("mtu %s %d", tt.action.Link, tt.action.To)
			if !slices.Equal(k.calls, []string{want}) || len(changes) != 1 || !changes[0].Wrote || changes[0].Found != tt.action.From {
				t.Errorf("calls %q, changes %+v", k.calls, changes)
			}
			if fmt.Sprint(got.Links) != fmt.Sprint(tt.want) {
				t.Errorf("record %v, want %v", got.Links, tt.want)
			}
			saved, _, err := store.LoadRecord()
			if err != nil || fmt.Sprint(saved.Links) != fmt.Sprint(tt.want) {
				t.Errorf("saved record %v (%v), want %v", saved.Links, err, tt.want)
			}
		})
	}
}

// Below 68 the kernel drops IPv4: such a step is refused, nothing written.
func TestApplyRefusesAnMTUBelowTheIPv4Minimum(t *testing.T) {
	k := &callKernel{}
	_, _, err := Apply(Plan{Actions: []Action{{Link: "eth0", From: 1280, To: 67}}}, newRecord(), k, Store{Dir: t.TempDir()})
	var ae *ApplyError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "refusing mtu 67") || len(k.calls) != 0 {
		t.Errorf("err = %v, calls %q", err, k.calls)
	}
}

// Everything the plan adds is in the record before it is added, so a
// failure (or a crash) part-way leaves a record revert can use.
func TestApplyRecordsAnAddedRouteBeforeAddingIt(t *testing.T) {
	store := Store{Dir: t.TempDir()}
	k := &callKernel{fail: map[string]error{"add-route": syscall.EEXIST}}
	p := Plan{Policy: &PolicyRecord{Table: ourTable}, Routes: []RouteAction{{Op: RouteAdd, Route: ourRoute}}}
	if _, _, err := Apply(p, newRecord(), k, store); err == nil {
		t.Fatal("a failed route add is no error")
	}
	saved, _, err := store.LoadRecord()
	if err != nil || saved.Policy == nil || saved.Policy.Table != ourTable || !slices.Equal(saved.Policy.Routes, []detect.Route{ourRoute}) {
		t.Errorf("saved policy %+v (%v), want table %d and the route", saved.Policy, err, ourTable)
	}
}

// Putting back a rule the record holds already costs no disk write (here:
// a disk that cannot be written), and the record keeps its rule and route.
func TestApplyPuttingBackRecordedPolicyWritesNoRecord(t *testing.T) {
	rec := newRecord()
	rec.Policy = &PolicyRecord{Table: ourTable, Rules: []detect.Rule{ourRule}, Routes: []detect.Route{ourRoute}}
	k := &callKernel{}
	p := Plan{Policy: &PolicyRecord{Table: ourTable}, Rules: []RuleAction{{Add: true, Rule: ourRule}}}
	got, _, err := Apply(p, rec, k, noDisk)
	if err != nil {
		t.Fatalf("a repair of a recorded rule saved the record: %v", err)
	}
	if len(k.calls) != 1 || !strings.HasPrefix(k.calls[0], "add-rule ") {
		t.Errorf("calls %q", k.calls)
	}
	if got.Policy == nil || !slices.Equal(got.Policy.Rules, []detect.Rule{ourRule}) || !slices.Equal(got.Policy.Routes, []detect.Route{ourRoute}) {
		t.Errorf("policy %+v", got.Policy)
	}
}

// A new table number is recorded even when the rules and routes are the
// same ones.
func TestApplyRecordsANewTable(t *testing.T) {
	store := Store{Dir: t.TempDir()}
	rec := newRecord()
	rec.Policy = &PolicyRecord{Table: ourTable + 1, Rules: []detect.Rule{ourRule}}
	p := Plan{Policy: &PolicyRecord{Table: ourTable}, Rules: []RuleAction{{Add: true, Rule: ourRule}}}
	if _, _, err := Apply(p, rec, &callKernel{}, store); err != nil {
		t.Fatal(err)
	}
	if saved, _, _ := store.LoadRecord(); saved.Policy == nil || saved.Policy.Table != ourTable {
		t.Errorf("saved policy %+v, want table %d", saved.Policy, ourTable)
	}
}

// The last save's failure is Apply's error: a record on disk that lags the
// kernel must not go unnoticed.
func TestApplyReportsAFailedLastSave(t *testing.T) {
	rec := recordWith(map[string]LinkRecord{"wg0": {Before: 1420, Wrote: 1320}})
	_, _, err := Apply(Plan{Forget: []string{"wg0"}}, rec, &callKernel{}, noDisk)
	if err == nil || !strings.Contains(err.Error(), "saving the revert record") {
		t.Errorf("err = %v, want the failed save", err)
	}
}

// A plan without a table of its own keeps the recorded one.
func TestApplyKeepsTheRecordedTable(t *testing.T) {
	store := Store{Dir: t.TempDir()}
	rec := newRecord()
	rec.Policy = &PolicyRecord{Table: ourTable, Rules: []detect.Rule{ourRule}}
	p := Plan{Routes: []RouteAction{{Op: RouteAdd, Route: ourRoute}}}
	if _, _, err := Apply(p, rec, &callKernel{}, store); err != nil {
		t.Fatal(err)
	}
	if saved, _, _ := store.LoadRecord(); saved.Policy == nil || saved.Policy.Table != ourTable || len(saved.Policy.Routes) != 1 {
		t.Errorf("saved policy %+v, want table %d with the route", saved.Policy, ourTable)
	}
}

// Only an interface brought back from below 1280 to at least 1280 lost its
// IPv6 addresses on the way.
func TestRevertedSaysIPv6IsGoneOnlyFromBelow1280(t *testing.T) {
	for _, tt := range []struct {
		from, to int
		gone     bool
	}{{1200, 1280, true}, {1279, 1360, true}, {1280, 1360, false}, {1200, 1279, false}, {1360, 1280, false}} {
		r := Reverted{Link: "tailscale0", From: tt.from, To: tt.to}
		if got := strings.Contains(r.String(), "lost its IPv6 addresses"); got != tt.gone {
			t.Errorf("%d → %d: %q, want the IPv6 warning %v", tt.from, tt.to, r, tt.gone)
		}
	}
}

// Revert deletes our rules from the highest preference number down (equal
// ones in the record's order), and the record on disk always lists the
// rules not yet deleted: a failure part-way leaves a record that revert can
// run from again.
func TestRevertDeletesOurRulesInOrderAndRecordsEachStep(t *testing.T) {
	v4a := detect.Rule{Family: 4, Priority: 5200, Table: ourTable, SuppressPrefixlen: -1}
	v6a := detect.Rule{Family: 6, Priority: 5200, Table: ourTable, SuppressPrefixlen: -1}
	v4b := detect.Rule{Family: 4, Priority: 5210, Table: detect.MainTable, SuppressPrefixlen: 0}
	rec := newRecord()
	rec.Policy = &PolicyRecord{Table: ourTable, Rules: []detect.Rule{v4a, v6a, v4b}}
	st := detect.State{Rules: []detect.Rule{v4a, v6a, v4b}}

	k := &callKernel{}
	if _, err := revertKernel(st, rec, k, Store{Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	want := []string{"del-rule ip " + v4b.String(), "del-rule ip " + v4a.String(), "del-rule ip -6 " + v6a.String()}
	if !slices.Equal(k.calls, want) {
		t.Errorf("calls\n%q\nwant\n%q", k.calls, want)
	}

	store := Store{Dir: t.TempDir()}
	failing := &failNth{n: 2}
	if _, err := revertKernel(st, rec, failing, store); err == nil {
		t.Fatal("a failed rule delete is no error")
	}
	saved, _, err := store.LoadRecord()
	if err != nil || saved.Policy == nil || !slices.Equal(saved.Policy.Rules, []detect.Rule{v4a, v6a}) {
		t.Errorf("record after the second delete failed: %+v (%v), want the two rules not deleted", saved.Policy, err)
	}
}

// failNth fails its n-th rule delete.
type failNth struct {
	callKernel
	n, seen int
}

func (k *failNth) DeleteRule(r detect.Rule) error {
	k.seen++
	if k.seen == k.n {
		return syscall.EPERM
	}
	return nil
}

// The last save of a revert (the record without its policy) failing is the
// revert's error.
func TestRevertReportsAFailedLastSave(t *testing.T) {
	rec := newRecord()
	rec.Policy = &PolicyRecord{Table: ourTable}
	if _, err := revertKernel(detect.State{}, rec, &callKernel{}, noDisk); err == nil {
		t.Error("a revert whose record cannot be saved is no error")
	}
}
