package lab

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/netwatch"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// The lab's WSL sequences and the fake kernel's must be the same thing:
// each step of each sequence, run on the lab's real kernel and on a fake
// kernel shaped like it, must produce the same link, address and route
// events about eth0, in the same order. (Like netwatch, the comparison
// sees unicast routes only; the fake has no link-local addresses, so
// fe80::/64 and its addresses are left out; the kernel sends an IPv6
// RTM_NEWADDR from a work queue, so those are compared apart from the
// order.)

// eventLine says an event the way both sides can: links and devices by
// name, routes as detect prints them.
func eventLine(gone bool, what string) string {
	if gone {
		return "del " + what
	}
	return "new " + what
}

func routeLine(r detect.Route, dev string) string {
	r.Dev, r.LinkIndex = dev, 0
	s := "route " + r.String()
	if r.MTU != 0 {
		s += fmt.Sprintf(" mtu %d", r.MTU)
	}
	return s
}

func linkLocal(s string) bool { return strings.Contains(s, "fe80:") }

// kernelEvents follows the lab's WSL namespace and returns a function that
// ends a step: it waits for a barrier (a rule added and deleted) and for
// v6 IPv6 address additions (which may come after it), and returns what
// came.
func kernelEvents(t *testing.T, l *Lab) func(v6 int) []string {
	t.Helper()
	s, err := nl.SubscribeAt(l.WSLNetNSHandle(), netns.None(), unix.NETLINK_ROUTE,
		unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE,
		unix.RTNLGRP_IPV4_RULE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		for {
			msgs, _, err := s.Receive()
			if err != nil {
				return
			}
			for _, m := range msgs {
				if line, ok := decodeForTest(l, m); ok {
					lines <- line
				}
			}
		}
	}()
	barrier := netlink.NewRule()
	barrier.Priority, barrier.Table = 3, 3333
	return func(v6 int) []string {
		t.Helper()
		if err := l.WSLNetlink().RuleAdd(barrier); err != nil {
			t.Fatal(err)
		}
		if err := l.WSLNetlink().RuleDel(barrier); err != nil {
			t.Fatal(err)
		}
		var out []string
		timeout := time.After(5 * time.Second)
		for rules := 0; rules < 2 || len(v6Added(out)) < v6; {
			select {
			case line := <-lines:
				if line == "rule" {
					rules++
				} else if !linkLocal(line) && strings.Contains(line, EthName) {
					// The fake has eth0 alone; the lab's tunnels may
					// still announce their IPv6 addresses late.
					out = append(out, line)
				}
			case <-timeout:
				t.Fatalf("no barrier (or not %d IPv6 addresses added) after 5s; so far %q", v6, out)
			}
		}
		return out
	}
}

func decodeForTest(l *Lab, m syscall.NetlinkMessage) (string, bool) {
	switch m.Header.Type {
	case unix.RTM_NEWRULE, unix.RTM_DELRULE:
		return "rule", true
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		link, err := netlink.LinkDeserialize(&unix.NlMsghdr{Type: m.Header.Type}, m.Data)
		if err != nil {
			return "", false
		}
		a := link.Attrs()
		return eventLine(m.Header.Type == unix.RTM_DELLINK, fmt.Sprintf("link %s mtu %d up %v", a.Name, a.MTU, a.Flags&net.FlagUp != 0)), true
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		msg := nl.DeserializeIfAddrmsg(m.Data)
		attrs, err := nl.ParseRouteAttr(m.Data[msg.Len():])
		if err != nil {
			return "", false
		}
		for _, a := range attrs {
			if a.Attr.Type == unix.IFA_ADDRESS {
				ip, _ := netip.AddrFromSlice(a.Value)
				p := netip.PrefixFrom(ip.Unmap(), int(msg.Prefixlen))
				return eventLine(m.Header.Type == unix.RTM_DELADDR, fmt.Sprintf("addr %s dev %s", p, devName(l, int(msg.Index)))), true
			}
		}
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		msg := nl.DeserializeRtMsg(m.Data)
		if msg.Flags&unix.RTM_F_CLONED != 0 || msg.Type != unix.RTN_UNICAST {
			return "", false
		}
		attrs, err := nl.ParseRouteAttr(m.Data[msg.Len():])
		if err != nil {
			return "", false
		}
		r := detect.Route{Family: 4, Table: int(msg.Table), Dst: "default"}
		if msg.Family == unix.AF_INET6 {
			r.Family = 6
		}
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.RTA_TABLE:
				r.Table = int(nl.NativeEndian().Uint32(a.Value))
			case unix.RTA_DST:
				r.Dst = (&net.IPNet{IP: net.IP(a.Value), Mask: net.CIDRMask(int(msg.Dst_len), 8*len(a.Value))}).String()
			case unix.RTA_GATEWAY:
				r.Gw = net.IP(a.Value).String()
			case unix.RTA_OIF:
				r.LinkIndex = int(nl.NativeEndian().Uint32(a.Value))
			case unix.RTA_PRIORITY:
				r.Metric = int(nl.NativeEndian().Uint32(a.Value))
			case unix.RTA_METRICS:
				metrics, _ := nl.ParseRouteAttr(a.Value)
				for _, mt := range metrics {
					if mt.Attr.Type == unix.RTAX_MTU {
						r.MTU = int(nl.NativeEndian().Uint32(mt.Value))
					}
				}
			}
		}
		if msg.Dst_len == 0 {
			r.Dst = "default"
		}
		return eventLine(m.Header.Type == unix.RTM_DELROUTE, routeLine(r, devName(l, r.LinkIndex))), true
	}
	return "", false
}

func devName(l *Lab, idx int) string {
	link, err := l.WSLNetlink().LinkByIndex(idx)
	if err != nil {
		return fmt.Sprintf("#%d", idx)
	}
	return link.Attrs().Name
}

// fakeEvents follows k the same way.
func fakeEvents(t *testing.T, k *fakekernel.Kernel) func() []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := k.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := func(idx int) string {
		links, _ := k.Links()
		for _, l := range links {
			if l.Index == idx {
				return l.Name
			}
		}
		return fmt.Sprintf("#%d", idx)
	}
	return func() []string {
		var out []string
		for {
			select {
			case ev := <-ch:
				out = append(out, fakeLine(ev, names))
			default:
				return out
			}
		}
	}
}

func fakeLine(ev netwatch.Event, names func(int) string) string {
	switch {
	case ev.Link != nil:
		return eventLine(ev.Gone, fmt.Sprintf("link %s mtu %d up %v", ev.Link.Name, ev.Link.MTU, ev.Link.Up))
	case ev.Addr != nil:
		return eventLine(ev.Gone, fmt.Sprintf("addr %s dev %s", ev.Addr.Prefix, names(ev.Addr.LinkIndex)))
	case ev.Route != nil:
		return eventLine(ev.Gone, routeLine(*ev.Route, names(ev.Route.LinkIndex)))
	}
	return fmt.Sprintf("%+v", ev)
}

func isV6Added(line string) bool {
	return strings.HasPrefix(line, "new addr ") && strings.Contains(line, ":")
}

func v6Added(lines []string) []string {
	var out []string
	for _, l := range lines {
		if isV6Added(l) {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// step runs one step on both kernels and compares their events; IPv6
// address additions may come in any place.
func step(t *testing.T, name string, kernel func(int) []string, fake func() []string, lab, fakeKernel func() error) {
	t.Helper()
	if err := lab(); err != nil {
		t.Fatalf("%s in the lab: %v", name, err)
	}
	if err := fakeKernel(); err != nil {
		t.Fatalf("%s in the fake kernel: %v", name, err)
	}
	f := fake()
	sameEvents(t, name, kernel(len(v6Added(f))), f)
}

func sameEvents(t *testing.T, step string, kernel, fake []string) {
	t.Helper()
	split := func(lines []string) (ordered, v6new []string) {
		return slices.DeleteFunc(slices.Clone(lines), isV6Added), v6Added(lines)
	}
	ko, k6 := split(kernel)
	fo, f6 := split(fake)
	if !slices.Equal(ko, fo) || !slices.Equal(k6, f6) {
		t.Errorf("%s: the kernel said\n  %s\nthe fake kernel said\n  %s", step, strings.Join(kernel, "\n  "), strings.Join(fake, "\n  "))
	} else {
		t.Logf("%s: %d events alike", step, len(kernel))
	}
}

// fakeLike is a fake kernel with the lab's eth0: its address, WSL's
// default route, and in mirrored mode its IPv6 and WSL's shape.
func fakeLike(t *testing.T, l *Lab) *fakekernel.Kernel {
	t.Helper()
	k := fakekernel.New()
	k.AddLink(detect.Link{Name: EthName, MTU: l.EthMTU(), Kind: "veth", Up: true})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.AddAddr(EthName, wslEth4.String()))
	must(k.AddDefaultRoute(EthName, hvWSL4.Addr().String()))
	if l.opts.Mirrored {
		must(k.AddAddr(EthName, wslEth6.String()))
		must(k.AddDefaultRoute(EthName, hvWSL6.Addr().String()))
		k.MirroredAddressRefresh(EthName)
	}
	return k
}

func TestWSLSequencesMatchTheFakeKernel(t *testing.T) {
	t.Parallel()
	t.Run("nat and consomme", func(t *testing.T) {
		t.Parallel()
		l := newLab(t, Options{EthMTU: 1280, TunnelMTU: 1280, Consomme: true})
		k := fakeLike(t, l)
		kernel, fake := kernelEvents(t, l), fakeEvents(t, k)
		kernel(0)
		fake()
		for _, mtu := range []int{1500, 1500, 1280, 1200, 1280} {
			step(t, fmt.Sprintf("NAT push %d", mtu), kernel, fake,
				func() error { return l.NATPush(mtu) }, func() error { k.NATPush(mtu); return nil })
		}
		scopeRoutes(t, l, k, kernel, fake, false)
		for _, p := range []netip.Prefix{AltEthAddr4, EthAddr4} {
			step(t, "consomme address "+p.String(), kernel, fake,
				func() error { return l.ConsommeAddressChange(p) }, func() error { return k.ConsommeAddressChange(EthName, p.String()) })
			sameRoutes(t, "consomme address "+p.String(), l, k)
		}
		for _, gw := range []netip.Addr{AltGateway4, Gateway4} {
			step(t, "consomme gateway "+gw.String(), kernel, fake,
				func() error { return l.ConsommeGatewayChange(gw) }, func() error { return k.ConsommeGatewayChange(EthName, gw.String()) })
			sameRoutes(t, "consomme gateway "+gw.String(), l, k)
		}
	})
	t.Run("mirrored", func(t *testing.T) {
		t.Parallel()
		l := newLab(t, Options{EthMTU: 1400, TunnelMTU: 1420, Mirrored: true, IPv6Underlay: true})
		k := fakeLike(t, l)
		kernel, fake := kernelEvents(t, l), fakeEvents(t, k)
		kernel(0)
		fake()
		scopeRoutes(t, l, k, kernel, fake, true)
		for i := 1; i <= 2; i++ {
			step(t, fmt.Sprintf("address refresh %d", i), kernel, fake,
				l.MirroredAddressRefresh, func() error { k.MirroredAddressRefresh(EthName); return nil })
			sameRoutes(t, fmt.Sprintf("address refresh %d", i), l, k)
		}
	})
}

func ethIndexOf(k *fakekernel.Kernel) int {
	links, _ := k.Links()
	for _, l := range links {
		if l.Name == EthName {
			return l.Index
		}
	}
	return 0
}

// sameRoutes compares the routes through eth0 in every table but the
// local one, as detect reads them, on both kernels.
func sameRoutes(t *testing.T, step string, l *Lab, k *fakekernel.Kernel) {
	t.Helper()
	lines := func(routes []detect.Route, name func(int) string) []string {
		var out []string
		for _, r := range routes {
			if r.Table == unix.RT_TABLE_LOCAL || strings.HasPrefix(r.Dst, "fe80:") || name(r.LinkIndex) != EthName {
				continue
			}
			out = append(out, routeLine(r, name(r.LinkIndex)))
		}
		slices.Sort(out)
		return out
	}
	have, err := (&detect.Kernel{H: l.WSLNetlink()}).Routes()
	if err != nil {
		t.Fatal(err)
	}
	fakeRoutes, _ := k.Routes()
	kl := lines(have, func(i int) string { return devName(l, i) })
	fl := lines(fakeRoutes, func(i int) string {
		links, _ := k.Links()
		for _, x := range links {
			if x.Index == i {
				return x.Name
			}
		}
		return fmt.Sprintf("#%d", i)
	})
	if !slices.Equal(kl, fl) {
		t.Errorf("%s: the kernel holds\n  %s\nthe fake kernel holds\n  %s", step, strings.Join(kl, "\n  "), strings.Join(fl, "\n  "))
	}
}

// scopeRoutes gives both kernels what the tunnel scope adds (the default
// routes' mtu and their copies in table 5200): WSL's sequences must treat
// them alike.
func scopeRoutes(t *testing.T, l *Lab, k *fakekernel.Kernel, kernel func(int) []string, fake func() []string, v6 bool) {
	t.Helper()
	scope := func(kern interface {
		SetRouteMTU(detect.Route, int) error
		AddRoute(detect.Route) error
	}, idx int) error {
		routes := []detect.Route{{Family: 4, Table: detect.MainTable, Dst: "default", Gw: Gateway4.String(), LinkIndex: idx}}
		if v6 {
			routes = append(routes, detect.Route{Family: 6, Table: detect.MainTable, Dst: "default", Gw: hvWSL6.Addr().String(), LinkIndex: idx, Metric: 1024})
		}
		for _, r := range routes {
			if err := kern.SetRouteMTU(r, 1280); err != nil {
				return err
			}
			r.Table = 5200
			if err := kern.AddRoute(r); err != nil {
				return err
			}
		}
		return nil
	}
	labEth, err := l.ethIndex()
	if err != nil {
		t.Fatal(err)
	}
	step(t, "the tunnel scope's routes", kernel, fake,
		func() error { return scope(fix.NetlinkKernel{H: l.WSLNetlink()}, labEth) }, func() error { return scope(k, ethIndexOf(k)) })
	sameRoutes(t, "the tunnel scope's routes", l, k)
}

// A VM restart is a new kernel: the boot id Sources serve changes, eth0 is
// back at the driver's 1500 with WSL's address and routes, and nothing
// else of the old boot is there (rules, other tables, tunnels) until the
// tunnel starts again, tailscaled's rules with it.
func TestVMRestart(t *testing.T) {
	t.Parallel()
	l := newLab(t, Options{EthMTU: 1280, TunnelMTU: 1280})
	bootID := func() string {
		b, err := fs.ReadFile(l.Sources().Root, "proc/sys/kernel/random/boot_id")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	boot1 := bootID()
	if boot1 != l.BootID() || len(boot1) != 36 {
		t.Fatalf("Sources serve boot id %q, the lab says %q", boot1, l.BootID())
	}
	// What an agent leaves behind when the VM stops under it.
	if err := l.SetEthMTU(1360); err != nil {
		t.Fatal(err)
	}
	leftover := netlink.NewRule()
	leftover.Priority, leftover.Table = 5200, 5200
	if err := l.WSLNetlink().RuleAdd(leftover); err != nil {
		t.Fatal(err)
	}
	dev, _ := l.ethIndex()
	if err := l.WSLNetlink().RouteAdd(&netlink.Route{LinkIndex: dev, Table: 5200, Gw: Gateway4.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	wslBefore := routingLines(t, l)

	if err := l.VMRestart(); err != nil {
		t.Fatal(err)
	}
	if boot2 := bootID(); boot2 == boot1 || boot2 != l.BootID() {
		t.Errorf("boot id %q after the restart (before %q, the lab says %q)", boot2, boot1, l.BootID())
	}
	if got := l.EthMTU(); got != DriverMTU {
		t.Errorf("eth0 %d after the restart, want %d", got, DriverMTU)
	}
	if got := l.TunnelMTU(); got != 0 {
		t.Errorf("tailscale0 exists (mtu %d) before anything starts it", got)
	}
	want := `$ ip rule
0:	from all lookup local
32766:	from all lookup main
32767:	from all lookup default
$ ip route show table all
default via 172.24.0.1 dev eth0 proto kernel onlink 
172.24.0.0/20 dev eth0 proto kernel scope link src 172.24.0.2 `
	if got := routingLines(t, l); got != want {
		t.Errorf("after the restart:\n%s\nwant:\n%s\n(before it:\n%s)", got, want, wslBefore)
	}
	if err := l.RestartTunnel(1280); err != nil {
		t.Fatal(err)
	}
	if got := routingLines(t, l); !strings.Contains(got, "5270:\tfrom all lookup 52") || !strings.Contains(got, "100.64.0.2 dev tailscale0 table 52") {
		t.Errorf("tailscaled's rules and table 52 did not come with tailscale0:\n%s", got)
	}
	if r := l.Download(t.Context()); !r.OK {
		t.Errorf("after the restart, eth0 1500: %s", r)
	}
}

// routingLines is `ip rule` and the IPv4 routes of every table but local.
func routingLines(t *testing.T, l *Lab) string {
	t.Helper()
	d, err := l.RoutingDump()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	section := ""
	for _, line := range strings.Split(d, "\n") {
		if strings.HasPrefix(line, "$ ") {
			section = line
			if section == "$ ip rule" || section == "$ ip route show table all" {
				out = append(out, line)
			}
			continue
		}
		switch {
		case section == "$ ip rule":
			out = append(out, line)
		case section == "$ ip route show table all" && !strings.Contains(line, "table local") && strings.Contains(line, "."):
			out = append(out, line)
		}
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n")
}
