package fix

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/firewall"
)

// NetlinkKernel changes links, routes and rules through a netlink handle.
type NetlinkKernel struct{ H *netlink.Handle }

// NetlinkKernel is the Kernel the appliers change on a real host.
var _ Kernel = NetlinkKernel{}

// SetMTU writes by index when it is known: one netlink request, no lookup.
func (n NetlinkKernel) SetMTU(l detect.Link, mtu int) error {
	if l.Index > 0 {
		return n.H.LinkSetMTU(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: l.Index, Name: l.Name}}, mtu)
	}
	link, err := n.H.LinkByName(l.Name)
	if err != nil {
		return fmt.Errorf("interface %q not found: %w", l.Name, err)
	}
	return n.H.LinkSetMTU(link, mtu)
}

// find is the kernel's own route that is the same as r, so a change keeps
// every attribute wslmtu does not model (protocol, scope, flags, source).
func (n NetlinkKernel) find(r detect.Route) (netlink.Route, error) {
	family := netlink.FAMILY_V4
	if r.Family == 6 {
		family = netlink.FAMILY_V6
	}
	routes, err := n.H.RouteListFiltered(family, &netlink.Route{Table: r.Table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netlink.Route{}, err
	}
	for _, have := range routes {
		if detect.RouteOf(have).Same(r) {
			return have, nil
		}
	}
	return netlink.Route{}, fmt.Errorf("route %s: %w", r, unix.ESRCH)
}

func (n NetlinkKernel) SetRouteMTU(r detect.Route, mtu int) error {
	have, err := n.find(r)
	if err != nil {
		return err
	}
	have.MTU = mtu
	// The kernel raises an IPv6 route's mtu along with its device's when
	// the two were equal (rt6_mtu_change): locked, it stays what Windows chose.
	have.MTULock = r.Family == 6 && mtu != 0
	return n.H.RouteReplace(&have)
}

func (n NetlinkKernel) AddRoute(r detect.Route) error {
	nr, err := routeFor(r)
	if err != nil {
		return err
	}
	// A copy of a main-table route keeps what the kernel gave the original
	// (its protocol, scope and flags), which wslmtu does not model.
	main := r
	main.Table = detect.MainTable
	if orig, err := n.find(main); err == nil {
		orig.Table, orig.MTU = r.Table, r.MTU
		return n.H.RouteAdd(&orig)
	}
	return n.H.RouteAdd(nr)
}

func (n NetlinkKernel) DeleteRoute(r detect.Route) error {
	have, err := n.find(r)
	if err != nil {
		return err
	}
	return n.H.RouteDel(&have)
}

func routeFor(r detect.Route) (*netlink.Route, error) {
	nr := &netlink.Route{Table: r.Table, LinkIndex: r.LinkIndex, Priority: r.Metric, MTU: r.MTU}
	if r.Family == 6 {
		nr.Family = netlink.FAMILY_V6
	} else {
		nr.Family = netlink.FAMILY_V4
	}
	if r.Gw != "" {
		nr.Gw = net.ParseIP(r.Gw)
		if nr.Gw == nil {
			return nil, fmt.Errorf("route %s: bad gateway %q", r, r.Gw)
		}
	}
	if !r.IsDefault() {
		_, dst, err := net.ParseCIDR(r.Dst)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", r, err)
		}
		nr.Dst = dst
	}
	return nr, nil
}

func ruleFor(r detect.Rule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V4
	if r.Family == 6 {
		nr.Family = netlink.FAMILY_V6
	}
	nr.Priority, nr.Table = r.Priority, r.Table
	if r.Mask != 0 {
		nr.Mark = r.Mark
		mask := r.Mask
		nr.Mask = &mask
	}
	if r.IPProto != 0 {
		nr.IPProto = r.IPProto
	}
	if r.Sport != 0 {
		nr.Sport = netlink.NewRulePortRange(uint16(r.Sport), uint16(r.Sport))
	}
	nr.SuppressPrefixlen = r.SuppressPrefixlen
	return nr
}

func (n NetlinkKernel) AddRule(r detect.Rule) error    { return n.H.RuleAdd(ruleFor(r)) }
func (n NetlinkKernel) DeleteRule(r detect.Rule) error { return n.H.RuleDel(ruleFor(r)) }

// HostAt is the Host whose links the handle sees: the current namespace for
// netlink.NewHandle(), another one for netlink.NewHandleAt. Its firewall
// commands run in the caller's namespace; set NetNS to run them in the
// handle's, when that is another one.
func HostAt(h *netlink.Handle, src detect.Sources, stateDir string) Host {
	return Host{Sources: src, Links: &detect.Kernel{H: h}, Kernel: NetlinkKernel{H: h}, Store: Store{Dir: stateDir},
		Firewall: firewall.Open}
}
