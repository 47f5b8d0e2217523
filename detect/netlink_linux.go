package detect

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl"
)

// Kernel reads links, routes and rules over a netlink handle; a handle made
// with netlink.NewHandleAt works on another namespace, which is how tests
// use it.
type Kernel struct {
	H *netlink.Handle
	// others are the tables whose routes the last Routes left out.
	mu     sync.Mutex
	others []int
}

// Kernel is the Netlink detection reads on a real host.
var _ Netlink = (*Kernel)(nil)

func (k *Kernel) Close() { k.H.Close() }

func (k *Kernel) Links() ([]Link, error) {
	nlLinks, err := k.H.LinkList()
	if err != nil {
		return nil, err
	}
	// One dump of all IPv6 addresses instead of one per link: per-link
	// dumps dominated the cost of an observation.
	v6, err := k.H.AddrList(nil, netlink.FAMILY_V6)
	if err != nil {
		return nil, err
	}
	globalV6 := map[int]int{}
	for _, a := range v6 {
		if a.Scope == unix.RT_SCOPE_UNIVERSE {
			globalV6[a.LinkIndex]++
		}
	}
	links := make([]Link, 0, len(nlLinks))
	for _, nl := range nlLinks {
		l := LinkOf(nl)
		l.IPv6Addrs = globalV6[l.Index]
		links = append(links, l)
	}
	return links, nil
}

// LinkOf converts a netlink link (from a dump or an RTM_NEWLINK event).
func LinkOf(nl netlink.Link) Link {
	attrs := nl.Attrs()
	l := Link{Name: attrs.Name, Index: attrs.Index, MTU: attrs.MTU, Kind: nl.Type(), Up: attrs.Flags&net.FlagUp != 0}
	if l.Kind == "tuntap" {
		l.Kind = "tun"
	}
	return l
}

// Routes streams every table's routes and keeps what a plan can act on:
// the main table's routes and every default route (ours are copies of
// WSL's). Of the other routes only their tables are kept (OtherTables): a
// host with 100k routes elsewhere (a BGP daemon, a big VPN) must not cost
// a periodic reader, such as the agent's health check, 100k routes of memory.
func (k *Kernel) Routes() ([]Route, error) {
	var out []Route
	others := map[int]bool{}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		err := k.H.RouteListFilteredIter(family, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE, func(r netlink.Route) bool {
			rt := RouteOf(r)
			if rt.Table == MainTable || rt.IsDefault() {
				out = append(out, rt)
			} else {
				others[rt.Table] = true
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	tables := make([]int, 0, len(others))
	for t := range others {
		tables = append(tables, t)
	}
	sort.Ints(tables)
	k.mu.Lock()
	k.others = tables
	k.mu.Unlock()
	return out, nil
}

// OtherTables are the tables holding routes the last Routes left out.
func (k *Kernel) OtherTables() []int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.others)
}

// RouteOf converts a netlink route (from a dump or an event).
func RouteOf(r netlink.Route) Route {
	out := Route{Family: 4, Table: r.Table, Gw: "", LinkIndex: r.LinkIndex, Metric: r.Priority, MTU: r.MTU, Dst: "default"}
	if r.Family == netlink.FAMILY_V6 {
		out.Family = 6
	}
	if r.Dst != nil && !IsDefaultRoute(r.Dst) {
		out.Dst = r.Dst.String()
	}
	if r.Gw != nil {
		out.Gw = r.Gw.String()
	}
	return out
}

func (k *Kernel) Rules() ([]Rule, error) {
	var out []Rule
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := k.H.RuleList(family)
		if err != nil {
			return nil, err
		}
		for _, r := range rules {
			out = append(out, RuleOf(r, family))
		}
	}
	return out, nil
}

// RuleOf converts a netlink rule of a family.
func RuleOf(r netlink.Rule, family int) Rule {
	out := Rule{Family: 4, Priority: r.Priority, Table: r.Table, SuppressPrefixlen: r.SuppressPrefixlen,
		IPProto: r.IPProto}
	if family == netlink.FAMILY_V6 {
		out.Family = 6
	}
	if r.Mark != 0 || (r.Mask != nil && *r.Mask != 0) {
		out.Mark = r.Mark
		out.Mask = 0xffffffff
		if r.Mask != nil {
			out.Mask = *r.Mask
		}
	}
	if r.Sport != nil {
		out.Sport = int(r.Sport.Start)
		if r.Sport.End != r.Sport.Start {
			out.Other = true
		}
	}
	if r.Src != nil || r.Dst != nil || r.IifName != "" || r.OifName != "" || r.Invert || r.Goto > 0 ||
		r.Dport != nil || r.UIDRange != nil || r.Tos != 0 || r.SuppressIfgroup > 0 || (r.Type != 0 && r.Type != unix.FR_ACT_TO_TBL) {
		out.Other = true
	}
	return out
}

// HostSources reads the real host: "/", the process environment, helper
// commands and WireGuard devices.
func HostSources() Sources {
	return Sources{Root: os.DirFS("/"), Getenv: os.Getenv, Run: runIfPresent, WireGuard: WireGuardReader()}
}

// WireGuardReader asks WireGuard devices (kernel, or userspace with a UAPI
// socket under /var/run/wireguard) for their fwmark and listen port. Its
// wgctrl client is opened at the first question, in the network namespace
// of the thread asking, and kept open: the agent asks on every reconnect.
func WireGuardReader() func(name string) (WireGuardDevice, bool) {
	var mu sync.Mutex
	var c *wgctrl.Client
	return func(name string) (WireGuardDevice, bool) {
		mu.Lock()
		defer mu.Unlock()
		if c == nil {
			client, err := wgctrl.New()
			if err != nil {
				return WireGuardDevice{}, false
			}
			c = client
		}
		d, err := c.Device(name)
		if err != nil {
			return WireGuardDevice{}, false
		}
		return WireGuardDevice{FwMark: uint32(d.FirewallMark), ListenPort: d.ListenPort}, true
	}
}

var errNotInstalled = errors.New("not installed")

func runIfPresent(name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, errNotInstalled
	}
	return exec.Command(name, args...).Output()
}
