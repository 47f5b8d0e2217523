package agent

import (
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
)

// The causes read in the log and in agent.json as they always did.
func TestCauseText(t *testing.T) {
	r := detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2, Dev: "eth0"}
	for _, c := range []struct {
		c    cause
		want string
	}{
		{cause{kind: causeStart}, "start"},
		{cause{kind: causeLinkAppeared, link: "wg0", mtu: 1420}, "wg0 appeared (mtu 1420)"},
		{cause{kind: causeLinkRemoved, link: "wg0"}, "wg0 removed"},
		{cause{kind: causeLinkDown, link: "eth0"}, "eth0 went down"},
		{cause{kind: causeLinkUp, link: "eth0"}, "eth0 came up"},
		{cause{kind: causeMTU, link: "eth0", mtu: 1280}, "eth0 mtu is 1280"},
		{cause{kind: causeRouteChanged, route: r}, "route default via 172.28.0.1 dev eth0 changed"},
		{cause{kind: causeRouteRemoved, route: r}, "route default via 172.28.0.1 dev eth0 removed"},
		{cause{kind: causeAddrLost, link: "eth0", index: 2, addr: "172.28.0.2/20"}, "eth0 lost address 172.28.0.2/20"},
		{cause{kind: causeAddrLost, index: 7, addr: "172.28.0.2/20"}, "#7 lost address 172.28.0.2/20"},
		{cause{kind: causeAddrGot, link: "eth0", addr: "172.28.0.2/20"}, "eth0 got address 172.28.0.2/20"},
		{cause{kind: causeRules}, "policy rules changed"},
		{cause{kind: causeRetry}, "rate-limited repair"},
		{cause{kind: causeResync}, "resync requested"},
		{cause{kind: causeResubscribed}, "resync after a netlink error"},
		{cause{kind: causeReload}, "config reloaded"},
		{cause{kind: causeReload + 1}, "cause(15)"},
	} {
		if got := c.c.String(); got != c.want {
			t.Errorf("%+v reads %q, want %q", c.c, got, c.want)
		}
	}
}

// A change is put down to the first event about what it touched: its
// interface (not one whose name merely starts the same), or any route for
// a route's or rule's change; else to the first event served.
func TestCauseOfMatchesWhatTheChangeTouched(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	route := detect.Route{Family: 4, Dst: "default", LinkIndex: 2}
	causes := []cause{
		{at: at(0), kind: causeRules},
		{at: at(1), kind: causeMTU, link: "eth0.1", mtu: 1280},
		{at: at(2), kind: causeAddrLost, index: 9, addr: "10.0.0.1/24"},
		{at: at(3), kind: causeAddrGot, link: "eth1", addr: "10.0.0.1/24"},
		{at: at(4), kind: causeMTU, link: "eth0", mtu: 1280},
		{at: at(5), kind: causeRouteRemoved, route: route},
		{at: at(6), kind: causeLinkUp, link: "eth0"},
	}
	for _, c := range []struct {
		ch   fix.Change
		want time.Time
	}{
		{fix.Change{Action: fix.Action{Link: "eth0"}}, at(4)},
		{fix.Change{Action: fix.Action{Link: "eth1"}}, at(3)},
		{fix.Change{Action: fix.Action{Link: "eth0.1"}}, at(1)},
		{fix.Change{Route: &fix.RouteAction{Route: route}}, at(5)},
		{fix.Change{Rule: &fix.RuleAction{}}, at(5)},
		{fix.Change{Action: fix.Action{Link: "wg0"}}, at(0)},
	} {
		if got := causeOf(causes, c.ch); !got.at.Equal(c.want) {
			t.Errorf("%s: cause %q at %v, want the one at %v", c.ch, got, got.at.Sub(t0), c.want.Sub(t0))
		}
	}
	if got := causeOf(causes[:1], fix.Change{Route: &fix.RouteAction{Route: route}}); got.kind != causeRules {
		t.Errorf("no route event: cause %q, want the first one served", got)
	}
}
