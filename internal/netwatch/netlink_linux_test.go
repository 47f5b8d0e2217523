package netwatch

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// An RTM_NEWADDR as the kernel sends it for 172.28.5.2/20 on link 7
// (IFA_ADDRESS and IFA_LOCAL alike, as on a broadcast interface), and for
// a point-to-point address whose IFA_ADDRESS is the peer.
func TestDecodeAddr(t *testing.T) {
	msg := func(family, plen byte, index uint32, attrs ...[]byte) []byte {
		b := []byte{family, plen, 0, 0, 0, 0, 0, 0}
		binary.NativeEndian.PutUint32(b[4:], index)
		for _, a := range attrs {
			b = append(b, a...)
		}
		return b
	}
	attr := func(typ uint16, v ...byte) []byte {
		b := make([]byte, 4, 4+len(v)+3)
		binary.NativeEndian.PutUint16(b[0:], uint16(4+len(v)))
		binary.NativeEndian.PutUint16(b[2:], typ)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	v6 := []byte{0xfd, 0, 0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}
	for _, c := range []struct {
		name string
		data []byte
		want Addr
		ok   bool
	}{
		{"ipv4", msg(unix.AF_INET, 20, 7, attr(unix.IFA_ADDRESS, 172, 28, 5, 2), attr(unix.IFA_LOCAL, 172, 28, 5, 2)),
			Addr{LinkIndex: 7, Family: 4, Prefix: "172.28.5.2/20"}, true},
		{"ipv4 peer", msg(unix.AF_INET, 32, 9, attr(unix.IFA_ADDRESS, 10, 0, 0, 1), attr(unix.IFA_LOCAL, 10, 0, 0, 2)),
			Addr{LinkIndex: 9, Family: 4, Prefix: "10.0.0.2/32"}, true},
		{"ipv6", msg(unix.AF_INET6, 64, 3, attr(unix.IFA_ADDRESS, v6...)),
			Addr{LinkIndex: 3, Family: 6, Prefix: "fd00:5:1::2/64"}, true},
		{"short", []byte{unix.AF_INET, 20}, Addr{}, false},
		{"no address", msg(unix.AF_INET, 20, 7), Addr{}, false},
		{"bad length", msg(unix.AF_INET, 20, 7, []byte{200, 0, 1, 0, 1, 2, 3, 4}), Addr{}, false},
		{"prefix too long", msg(unix.AF_INET, 33, 7, attr(unix.IFA_LOCAL, 10, 0, 0, 2)), Addr{}, false},
		{"other family", msg(unix.AF_PACKET, 0, 7, attr(unix.IFA_LOCAL, 10, 0, 0, 2)), Addr{}, false},
	} {
		got, ok := decodeAddr(c.data)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// The kernel behaviour the agent relies on, and the events that report it:
// deleting a link's last IPv4 address flushes every IPv4 route through it,
// in every table, and the only word of it is the RTM_DELADDR.
func TestNetlinkAddressEventsAndTheSilentFlush(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	ns.Run(t, "ip", "route", "add", "default", "via", "172.28.0.1", "dev", "eth0", "table", "5200")
	nsn := netnstest.NetNS(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := Netlink{NS: nsn}.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eth0, err := ns.Handle.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "ip", "addr", "del", "172.28.0.2/20", "dev", "eth0")
	ns.Run(t, "ip", "addr", "add", "172.28.0.2/20", "dev", "eth0")
	var gone, added *Addr
	var routeGone []string
	deadline := time.After(3 * time.Second)
	for added == nil {
		select {
		case ev := <-events:
			switch {
			case ev.Err != nil:
				t.Fatal(ev.Err)
			case ev.Addr != nil && ev.Gone && gone == nil:
				gone = ev.Addr
			case ev.Addr != nil && !ev.Gone && gone != nil && ev.Addr.Family == 4: // not the kernel's IPv6 link-local work
				added = ev.Addr
			case ev.Route != nil && ev.Gone:
				routeGone = append(routeGone, ev.Route.String())
			}
		case <-deadline:
			t.Fatalf("no address events within 3s (removed %+v, routes gone %q)", gone, routeGone)
		}
	}
	want := Addr{LinkIndex: eth0.Attrs().Index, Family: 4, Prefix: "172.28.0.2/20"}
	if *gone != want || *added != want {
		t.Errorf("address events %+v then %+v, want %+v twice", *gone, *added, want)
	}
	for _, r := range routeGone {
		if strings.HasPrefix(r, "default") {
			t.Errorf("an RTM_DELROUTE for %s: the flush is not silent on this kernel", r)
		}
	}
	var left []detect.Route
	if err := (Netlink{NS: nsn}).Routes(5200, func(r detect.Route) { left = append(left, r) }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("table 5200 after the address came back: %v, want it flushed", left)
	}
}

// Routes reads one table (the kernel filters it), every table with 0, and
// a table that does not exist as empty; Addrs every address.
func TestNetlinkDumps(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	ns.Run(t, "ip", "route", "add", "default", "via", "172.28.0.1", "dev", "eth0", "table", "5200", "mtu", "1400")
	ns.Run(t, "ip", "route", "add", "10.50.0.0/16", "via", "172.28.0.1", "dev", "eth0", "table", "77")
	ns.Run(t, "ip", "-6", "addr", "add", "fd00:5:1::2/64", "dev", "eth0", "nodad")
	ns.Run(t, "ip", "-6", "route", "add", "default", "via", "fd00:5:1::1", "dev", "eth0", "table", "5200")
	nsn := netnstest.NetNS(t, ns)
	n := Netlink{NS: nsn}
	read := func(table int) []string {
		t.Helper()
		var out []string
		if err := n.Routes(table, func(r detect.Route) {
			if r.Table != detect.MainTable && r.Table != 255 || table != 0 {
				out = append(out, r.String()+" mtu "+strconv.Itoa(r.MTU))
			}
		}); err != nil {
			t.Fatalf("Routes(%d): %v", table, err)
		}
		slices.Sort(out)
		return out
	}
	eth0, _ := ns.Handle.LinkByName("eth0")
	dev := " dev #" + strconv.Itoa(eth0.Attrs().Index)
	if got, want := read(5200), []string{
		"default via 172.28.0.1" + dev + " table 5200 mtu 1400",
		"default via fd00:5:1::1" + dev + " table 5200 metric 1024 mtu 0",
	}; !slices.Equal(got, want) {
		t.Errorf("table 5200: %q, want %q", got, want)
	}
	if got := read(0); !slices.Contains(got, "10.50.0.0/16 via 172.28.0.1"+dev+" table 77 mtu 0") || len(got) < 3 {
		t.Errorf("every table: %q", got)
	}
	if got := read(4242); len(got) != 0 {
		t.Errorf("a table that does not exist: %q", got)
	}
	// The decoder agrees with vishvananda/netlink's (what detect reads) on
	// every unicast route of every table.
	var ours, theirs []string
	if err := n.Routes(0, func(r detect.Route) { ours = append(ours, fmt.Sprintf("%+v", r)) }); err != nil {
		t.Fatal(err)
	}
	all, err := ns.Handle.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if r.Type == unix.RTN_UNICAST {
			theirs = append(theirs, fmt.Sprintf("%+v", detect.RouteOf(r)))
		}
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	if !slices.Equal(ours, theirs) || len(ours) < 5 {
		t.Errorf("decoded here:\n%s\nby vishvananda/netlink:\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
	}
	var addrs []string
	if err := n.Addrs(func(a Addr) { addrs = append(addrs, a.Prefix) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(addrs, "172.28.0.2/20") || !slices.Contains(addrs, "fd00:5:1::2/64") {
		t.Errorf("addresses %q", addrs)
	}
}
