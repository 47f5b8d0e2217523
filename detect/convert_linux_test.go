package detect

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The conversions from netlink's structs are pure: each field that reaches
// a Link, Route or Rule, and each selector wslmtu does not model, which
// marks a rule Other so it is never taken for one of ours.
func TestLinkOf(t *testing.T) {
	attrs := func(name string, index int, flags net.Flags) netlink.LinkAttrs {
		return netlink.LinkAttrs{Name: name, Index: index, MTU: 1280, Flags: flags}
	}
	for _, tt := range []struct {
		in   netlink.Link
		want Link
	}{
		{&netlink.Tuntap{LinkAttrs: attrs("tailscale0", 3, net.FlagUp|net.FlagPointToPoint)}, Link{Name: "tailscale0", Index: 3, MTU: 1280, Kind: "tun", Up: true}},
		{&netlink.Wireguard{LinkAttrs: attrs("wg0", 4, 0)}, Link{Name: "wg0", Index: 4, MTU: 1280, Kind: "wireguard"}},
		{&netlink.Veth{LinkAttrs: attrs("eth0", 2, net.FlagBroadcast)}, Link{Name: "eth0", Index: 2, MTU: 1280, Kind: "veth"}},
	} {
		if got := LinkOf(tt.in); got != tt.want {
			t.Errorf("LinkOf(%s) = %+v, want %+v", tt.in.Attrs().Name, got, tt.want)
		}
	}
}

func TestRouteOf(t *testing.T) {
	cidr := func(s string) *net.IPNet { _, n, _ := net.ParseCIDR(s); return n }
	for _, tt := range []struct {
		in   netlink.Route
		want Route
	}{
		{netlink.Route{Family: netlink.FAMILY_V4, Table: 254, LinkIndex: 2, Gw: net.ParseIP("172.28.0.1"), Priority: 100, MTU: 1360},
			Route{Family: 4, Table: 254, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2, Metric: 100, MTU: 1360}},
		{netlink.Route{Family: netlink.FAMILY_V6, Table: 5200, LinkIndex: 2, Dst: cidr("::/0")},
			Route{Family: 6, Table: 5200, Dst: "default", LinkIndex: 2}},
		{netlink.Route{Family: netlink.FAMILY_V4, Table: 254, LinkIndex: 2, Dst: cidr("172.28.0.0/20")},
			Route{Family: 4, Table: 254, Dst: "172.28.0.0/20", LinkIndex: 2}},
	} {
		if got := RouteOf(tt.in); got != tt.want {
			t.Errorf("RouteOf(%+v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestRuleOf(t *testing.T) {
	mask := func(m uint32) *uint32 { return &m }
	base := func(change func(*netlink.Rule)) netlink.Rule {
		r := netlink.NewRule()
		r.Priority, r.Table = 5200, 5200
		change(r)
		return *r
	}
	plain := Rule{Family: 4, Priority: 5200, Table: 5200, SuppressPrefixlen: -1}
	with := func(change func(*Rule)) Rule { r := plain; change(&r); return r }
	other := with(func(r *Rule) { r.Other = true })
	for _, tt := range []struct {
		name   string
		in     netlink.Rule
		family int
		want   Rule
	}{
		{"plain", base(func(*netlink.Rule) {}), netlink.FAMILY_V4, plain},
		{"IPv6", base(func(*netlink.Rule) {}), netlink.FAMILY_V6, with(func(r *Rule) { r.Family = 6 })},
		{"mark without mask", base(func(r *netlink.Rule) { r.Mark = 0x80000 }), netlink.FAMILY_V4, with(func(r *Rule) { r.Mark, r.Mask = 0x80000, 0xffffffff })},
		{"mark and mask", base(func(r *netlink.Rule) { r.Mark, r.Mask = 0x80000, mask(0xff0000) }), netlink.FAMILY_V4, with(func(r *Rule) { r.Mark, r.Mask = 0x80000, 0xff0000 })},
		{"mask of mark 0", base(func(r *netlink.Rule) { r.Mask = mask(0xff) }), netlink.FAMILY_V4, with(func(r *Rule) { r.Mask = 0xff })},
		{"zero mask", base(func(r *netlink.Rule) { r.Mask = mask(0) }), netlink.FAMILY_V4, plain},
		{"sport", base(func(r *netlink.Rule) { r.IPProto, r.Sport = 17, netlink.NewRulePortRange(41641, 41641) }), netlink.FAMILY_V4,
			with(func(r *Rule) { r.IPProto, r.Sport = 17, 41641 })},
		{"sport range", base(func(r *netlink.Rule) { r.Sport = netlink.NewRulePortRange(1, 2) }), netlink.FAMILY_V4,
			with(func(r *Rule) { r.Sport, r.Other = 1, true })},
		{"suppress_prefixlength", base(func(r *netlink.Rule) { r.SuppressPrefixlen = 0 }), netlink.FAMILY_V4, with(func(r *Rule) { r.SuppressPrefixlen = 0 })},
		{"goto 0 and ifgroup 0 are unset", base(func(r *netlink.Rule) { r.Goto, r.SuppressIfgroup = 0, 0 }), netlink.FAMILY_V4, plain},
		{"action to table", base(func(r *netlink.Rule) { r.Type = unix.FR_ACT_TO_TBL }), netlink.FAMILY_V4, plain},
		{"from", base(func(r *netlink.Rule) { r.Src = &net.IPNet{IP: net.IPv4(10, 0, 0, 0), Mask: net.CIDRMask(8, 32)} }), netlink.FAMILY_V4, other},
		{"to", base(func(r *netlink.Rule) { r.Dst = &net.IPNet{IP: net.IPv4(10, 0, 0, 0), Mask: net.CIDRMask(8, 32)} }), netlink.FAMILY_V4, other},
		{"iif", base(func(r *netlink.Rule) { r.IifName = "eth0" }), netlink.FAMILY_V4, other},
		{"oif", base(func(r *netlink.Rule) { r.OifName = "eth0" }), netlink.FAMILY_V4, other},
		{"not", base(func(r *netlink.Rule) { r.Invert = true }), netlink.FAMILY_V4, other},
		{"goto", base(func(r *netlink.Rule) { r.Goto = 1 }), netlink.FAMILY_V4, other},
		{"dport", base(func(r *netlink.Rule) { r.Dport = netlink.NewRulePortRange(53, 53) }), netlink.FAMILY_V4, other},
		{"uidrange", base(func(r *netlink.Rule) { r.UIDRange = netlink.NewRuleUIDRange(0, 0) }), netlink.FAMILY_V4, other},
		{"tos", base(func(r *netlink.Rule) { r.Tos = 4 }), netlink.FAMILY_V4, other},
		{"suppress_ifgroup", base(func(r *netlink.Rule) { r.SuppressIfgroup = 1 }), netlink.FAMILY_V4, other},
		{"unreachable", base(func(r *netlink.Rule) { r.Type = unix.FR_ACT_UNREACHABLE }), netlink.FAMILY_V4, other},
	} {
		if got := RuleOf(tt.in, tt.family); got != tt.want {
			t.Errorf("%s: RuleOf = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// A helper that is not installed is "not available", never a failure to
// run it.
func TestRunIfPresent(t *testing.T) {
	if _, err := runIfPresent("wslmtu-no-such-helper"); err != errNotInstalled {
		t.Errorf("a missing helper: %v, want errNotInstalled", err)
	}
	if out, err := runIfPresent("echo", "nat"); err != nil || out == nil || string(out) != "nat\n" {
		t.Errorf("echo nat: %q, %v", out, err)
	}
}
