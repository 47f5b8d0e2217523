package fakekernel

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/netwatch"
)

// record subscribes to k and returns a function that stops and lists what
// was delivered since, one line per event, as `ip monitor` would say it.
func record(t *testing.T, k *Kernel) func() []string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := k.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return func() []string {
		cancel()
		var out []string
		for ev := range ch {
			out = append(out, describe(k, ev))
		}
		return out
	}
}

func describe(k *Kernel, ev netwatch.Event) string {
	verb := "new"
	if ev.Gone {
		verb = "del"
	}
	switch {
	case ev.Link != nil:
		return fmt.Sprintf("%s link %s mtu %d up %v", verb, ev.Link.Name, ev.Link.MTU, ev.Link.Up)
	case ev.Addr != nil:
		return fmt.Sprintf("%s addr %s dev #%d", verb, ev.Addr.Prefix, ev.Addr.LinkIndex)
	case ev.Route != nil:
		s := fmt.Sprintf("%s route %s", verb, ev.Route)
		if ev.Route.MTU != 0 {
			s += fmt.Sprintf(" mtu %d", ev.Route.MTU)
		}
		return s
	case ev.Rules:
		return "rules"
	}
	return fmt.Sprintf("error %v", ev.Err)
}

func wantEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

var mainDefault = detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}

// withScope gives k what the tunnel scope adds: the main default route's
// mtu and its copy in table 5200.
func withScope(t *testing.T, k *Kernel) {
	t.Helper()
	if err := k.SetRouteMTU(mainDefault, 1280); err != nil {
		t.Fatal(err)
	}
	copy5200 := mainDefault
	copy5200.Table = 5200
	if err := k.AddRoute(copy5200); err != nil {
		t.Fatal(err)
	}
}

// A NAT push is one RTM_NEWLINK when the MTU changes and nothing when it
// does not; below 1280 the kernel takes eth0's IPv6 with it.
func TestNATPush(t *testing.T) {
	k := NewWSL(1280, 1280)
	if err := k.AddAddr("eth0", "fd00::2/64"); err != nil {
		t.Fatal(err)
	}
	stop := record(t, k)
	k.NATPush(1500)
	k.NATPush(1500)
	k.NATPush(1280)
	k.NATPush(1200)
	k.NATPush(1280)
	wantEvents(t, stop(),
		"new link eth0 mtu 1500 up true",
		"new link eth0 mtu 1280 up true",
		"new link eth0 mtu 1200 up true",
		"del route fd00::/64 dev #2 metric 256",
		"del addr fd00::2/64 dev #2",
		"new link eth0 mtu 1280 up true")
	if got := k.Addrs("eth0"); !slices.Equal(got, []string{"172.28.0.2/20"}) {
		t.Errorf("eth0 addresses after 1200 and back: %q; IPv6 must not come back", got)
	}
}

// A mirrored refresh deletes and re-adds every address; the last IPv4
// address takes every IPv4 route through eth0 with it, in every table, and
// only its own prefix route is announced. WSL then restores the gateway
// routes and sends every route again without its mtu.
func TestMirroredAddressRefresh(t *testing.T) {
	k := NewWSL(1280, 1280)
	withScope(t, k)
	if err := k.AddAddr("eth0", "fd00::2/64"); err != nil {
		t.Fatal(err)
	}
	if err := k.AddDefaultRoute("eth0", "fd00::1"); err != nil {
		t.Fatal(err)
	}
	stop := record(t, k)
	k.MirroredAddressRefresh("eth0")
	wantEvents(t, stop(),
		"del addr 172.28.0.2/20 dev #2",
		"del route 172.28.0.0/20 dev #2",
		"new addr 172.28.0.2/20 dev #2",
		"new route default via 172.28.0.1 dev #2",
		"del addr fd00::2/64 dev #2",
		"del route fd00::/64 dev #2 metric 256",
		"new addr fd00::2/64 dev #2",
		"new route 172.28.0.0/20 dev #2",
		"new route fd00::/64 dev #2 metric 1024",
		"new route default via fd00::1 dev #2 metric 1024")
	if _, ok := k.Route(detect.Route{Family: 4, Table: 5200, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}); ok {
		t.Error("table 5200's route survived the flush")
	}
	if r, _ := k.Route(mainDefault); r.MTU != 0 {
		t.Errorf("main default route mtu %d after the refresh, want none", r.MTU)
	}
	// Again: now the addresses have no prefix route of the kernel's, and the
	// routes WSL sends are the ones there; only the flush and restore show.
	stop = record(t, k)
	k.MirroredAddressRefresh("eth0")
	wantEvents(t, stop(),
		"del addr 172.28.0.2/20 dev #2",
		"new addr 172.28.0.2/20 dev #2",
		"new route default via 172.28.0.1 dev #2",
		"del addr fd00::2/64 dev #2",
		"new addr fd00::2/64 dev #2",
		"new route 172.28.0.0/20 dev #2",
		"new route fd00::/64 dev #2 metric 1024",
		"new route default via fd00::1 dev #2 metric 1024")
}

// A consomme address change: the old address goes (with a silent flush),
// the new one comes with the kernel's prefix route, WSL re-adds the route.
func TestConsommeAddressChange(t *testing.T) {
	k := NewWSL(1280, 1280)
	withScope(t, k)
	stop := record(t, k)
	if err := k.ConsommeAddressChange("eth0", "172.28.0.3/20"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, stop(),
		"del addr 172.28.0.2/20 dev #2",
		"del route 172.28.0.0/20 dev #2",
		"new addr 172.28.0.3/20 dev #2",
		"new route 172.28.0.0/20 dev #2",
		"new route default via 172.28.0.1 dev #2")
	if got := k.RoutingDump(); strings.Contains(got, "table 5200") {
		t.Errorf("table 5200 survived:\n%s", got)
	}
	if err := k.ConsommeAddressChange("eth0", "fd00::3/64"); err == nil {
		t.Error("an IPv6 prefix was taken for consomme's IPv4 address")
	}
}

// A consomme gateway change deletes the old default route (whatever its
// mtu) and adds the new one; table 5200 is not WSL's business.
func TestConsommeGatewayChange(t *testing.T) {
	k := NewWSL(1280, 1280)
	withScope(t, k)
	stop := record(t, k)
	if err := k.ConsommeGatewayChange("eth0", "172.28.0.9"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, stop(),
		"del route default via 172.28.0.1 dev #2 mtu 1280",
		"new route default via 172.28.0.9 dev #2")
	// `ip route add` of the new copy beside the old one is what jams a plan.
	r := detect.Route{Family: 4, Table: 5200, Dst: "default", Gw: "172.28.0.9", LinkIndex: 2}
	if err := k.AddRoute(r); err == nil || !strings.Contains(err.Error(), "file exists") {
		t.Errorf("adding %s beside the .1 copy: %v, want file exists", r, err)
	}
}

// WSL's create of its default route beside one with an mtu adds a second
// route, as the kernel does for NLM_F_CREATE without NLM_F_EXCL; an
// identical one is no event.
func TestAddDefaultRoute(t *testing.T) {
	k := NewWSL(1280, 1280)
	stop := record(t, k)
	k.AddDefaultRoute("eth0", "172.28.0.1")
	if err := k.SetRouteMTU(mainDefault, 1280); err != nil {
		t.Fatal(err)
	}
	k.AddDefaultRoute("eth0", "172.28.0.1")
	wantEvents(t, stop(),
		"new route default via 172.28.0.1 dev #2 mtu 1280",
		"new route default via 172.28.0.1 dev #2")
	if n := strings.Count(k.RoutingDump(), "default via 172.28.0.1 dev eth0 table main"); n != 2 {
		t.Errorf("%d default routes, want 2:\n%s", n, k.RoutingDump())
	}
}

// A VM restart is a new kernel: eth0 at the driver's default with WSL's
// addresses and routes, nothing else, a new boot id.
func TestVMRestart(t *testing.T) {
	k := NewWSL(1280, 1280)
	withScope(t, k)
	k.Reset("eth0", 1360)
	boot := k.BootID()
	k.VMRestart()
	if k.BootID() == boot {
		t.Error("the boot id did not change")
	}
	want := `link 1 lo mtu 65536 up true
link 2 eth0 mtu 1500 up true 172.28.0.2/20
ip -4 route 172.28.0.0/20 dev eth0 table main
ip -4 route default via 172.28.0.1 dev eth0 table main`
	if got := k.RoutingDump(); got != want {
		t.Errorf("after VMRestart:\n%s\nwant:\n%s", got, want)
	}
}

// Lookup follows the rules: tailscaled's marked packets with the tunnel
// scope in place use table 5200; without it the main route's mtu.
func TestLookup(t *testing.T) {
	k := NewWSL(1360, 1280)
	withScope(t, k)
	p, err := k.Lookup(4, 0x80000, TailscaledPort, "192.168.50.2")
	if err != nil || p.Rule != 5210 || p.MTU != 1280 {
		t.Errorf("marked packet without our rules: %+v, %v; want rule 5210 mtu 1280", p, err)
	}
	for _, r := range []detect.Rule{
		{Family: 4, Priority: 5190, Table: detect.MainTable, Mark: 0x80000, Mask: 0xff0000, SuppressPrefixlen: 0},
		{Family: 4, Priority: 5200, Table: 5200, Mark: 0x80000, Mask: 0xff0000, SuppressPrefixlen: -1},
	} {
		if err := k.AddRule(r); err != nil {
			t.Fatal(err)
		}
	}
	if p, err := k.Lookup(4, 0x80000, TailscaledPort, "192.168.50.2"); err != nil || p.Rule != 5200 || p.MTU != 1360 {
		t.Errorf("marked packet: %+v, %v; want rule 5200 mtu 1360", p, err)
	}
	if p, err := k.Lookup(4, 0, 0, "10.8.0.2"); err != nil || p.Rule != 32766 || p.MTU != 1280 {
		t.Errorf("ordinary packet: %+v, %v; want main mtu 1280", p, err)
	}
	if p, err := k.Lookup(4, 0, 0, "100.64.0.2"); err != nil || p.Rule != 5270 || p.Dev != "tailscale0" {
		t.Errorf("tailnet packet: %+v, %v; want table 52 through tailscale0", p, err)
	}
	k.ConsommeAddressChange("eth0", "172.28.0.3/20")
	k.DeleteRoute(mainDefault)
	if _, err := k.Lookup(4, 0x80000, TailscaledPort, "192.168.50.2"); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("marked packet with no default route: %v, want tailscaled's unreachable", err)
	}
}
