package lab

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// WSL's own sequences on the lab's WSL, sent as microsoft/WSL's guest side
// sends them (src/linux/netlinkutil: Interface, RoutingTable), message for
// message, so the kernel answers them as it answers WSL:
//   - a route is RTM_NEWROUTE/RTM_DELROUTE with rtm_table 0 and RTA_TABLE
//     main, proto kernel (unspec to delete), scope universe with a gateway
//     and link without, RTM_F_NOTIFY, RTNH_F_ONLINK on a default route via a
//     gateway, RTA_OIF, RTA_GATEWAY, RTA_DST and RTA_PRIORITY, never metrics
//     (no mtu); WSL ignores EEXIST, ENOENT and ESRCH.
//   - an address is RTM_NEWADDR/RTM_DELADDR with IFA_ADDRESS, IFA_LOCAL,
//     IFA_CACHEINFO (forever), IFA_FLAGS and, for IPv4, IFA_BROADCAST.
//   - an MTU push is SIOCSIFFLAGS adding IFF_UP|IFF_RUNNING, then
//     RTM_NEWLINK with IFLA_MTU alone.

// Addresses a WSL change moves to (consomme): another address for eth0 in
// the same subnet, so Hyper-V's NAT still covers it, and another gateway,
// which the lab gives Hyper-V's end too, so traffic still flows.
var (
	EthAddr4    = wslEth4
	AltEthAddr4 = netip.MustParsePrefix("172.24.0.3/20")
	Gateway4    = hvWSL4.Addr()
	AltGateway4 = netip.MustParsePrefix("172.24.0.9/20").Addr()
)

// wslRoute is a route as WSL's Route holds it.
type wslRoute struct {
	dst    netip.Prefix // invalid for a default route
	gw     netip.Addr   // invalid for an on-link route
	dev    int
	metric int
	v6     bool
}

func (r wslRoute) String() string {
	dst := "default"
	if r.dst.IsValid() {
		dst = r.dst.String()
	}
	if r.gw.IsValid() {
		dst += " via " + r.gw.String()
	}
	return fmt.Sprintf("%s dev #%d metric %d", dst, r.dev, r.metric)
}

// ignoreWSL drops the errors WSL's RoutingTable ignores.
func ignoreWSL(err error, op uint16) error {
	switch {
	case err == nil:
		return nil
	case op == unix.RTM_DELROUTE && errors.Is(err, unix.ESRCH):
		return nil
	case op == unix.RTM_NEWROUTE && (errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)):
		return nil
	}
	return err
}

// sendRoute sends one of WSL's route messages in the WSL namespace;
// flags is NLM_F_CREATE (Create), NLM_F_CREATE|NLM_F_REPLACE (Update) or
// 0 (Remove).
func (l *Lab) sendRoute(op uint16, flags int, r wslRoute) error {
	family := unix.AF_INET
	if r.v6 {
		family = unix.AF_INET6
	}
	msg := nl.NewRtMsg()
	msg.Family, msg.Table, msg.Type = uint8(family), unix.RT_TABLE_UNSPEC, unix.RTN_UNICAST
	msg.Protocol, msg.Scope, msg.Flags = unix.RTPROT_KERNEL, unix.RT_SCOPE_UNIVERSE, unix.RTM_F_NOTIFY
	if op == unix.RTM_DELROUTE {
		msg.Protocol = unix.RTPROT_UNSPEC
	}
	if !r.gw.IsValid() {
		msg.Scope = unix.RT_SCOPE_LINK
	} else if !r.dst.IsValid() {
		msg.Flags |= unix.RTNH_F_ONLINK
	}
	if r.dst.IsValid() {
		msg.Dst_len = uint8(r.dst.Bits())
	}
	req := nl.NewNetlinkRequest(int(op), flags|unix.NLM_F_ACK)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(unix.RT_TABLE_MAIN)))
	req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(r.dev))))
	if r.dst.IsValid() {
		req.AddData(nl.NewRtAttr(unix.RTA_DST, r.dst.Addr().AsSlice()))
	}
	if r.gw.IsValid() {
		req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, r.gw.AsSlice()))
	}
	req.AddData(nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(uint32(r.metric))))
	err := l.wsl.ns.Do(func() error {
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
	if err = ignoreWSL(err, op); err != nil {
		return fmt.Errorf("lab: WSL's route %s (%d, flags %#x) in %s: %w", r, op, flags, l.wsl.name, err)
	}
	return nil
}

// sendAddr sends one of WSL's address messages in the WSL namespace:
// RTM_DELADDR, or RTM_NEWADDR with NLM_F_CREATE|NLM_F_EXCL (Create) or
// NLM_F_CREATE|NLM_F_REPLACE (Update). noPrefixRoute is WSL's choice for
// addresses Windows announces one by one (it sends their prefix routes
// itself); IPv6 addresses also get IFA_F_NODAD.
func (l *Lab) sendAddr(op uint16, flags int, dev int, p netip.Prefix, noPrefixRoute bool) error {
	family := unix.AF_INET
	if p.Addr().Is6() {
		family = unix.AF_INET6
	}
	msg := nl.NewIfAddrmsg(family)
	msg.Prefixlen, msg.Index, msg.Scope = uint8(p.Bits()), uint32(dev), unix.RT_SCOPE_UNIVERSE
	req := nl.NewNetlinkRequest(int(op), flags|unix.NLM_F_ACK)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, p.Addr().AsSlice()))
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, p.Addr().AsSlice()))
	cache := nl.IfaCacheInfo{IfaCacheinfo: unix.IfaCacheinfo{Prefered: 0xffffffff, Valid: 0xffffffff}}
	req.AddData(nl.NewRtAttr(unix.IFA_CACHEINFO, cache.Serialize()))
	var addrFlags uint32
	if noPrefixRoute {
		addrFlags |= unix.IFA_F_NOPREFIXROUTE
	}
	if family == unix.AF_INET6 {
		addrFlags |= unix.IFA_F_NODAD
	}
	req.AddData(nl.NewRtAttr(unix.IFA_FLAGS, nl.Uint32Attr(addrFlags)))
	if family == unix.AF_INET {
		bcast := p.Addr().As4()
		mask := net.CIDRMask(p.Bits(), 32)
		for i := range bcast {
			bcast[i] |= ^mask[i]
		}
		req.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, bcast[:]))
	}
	err := l.wsl.ns.Do(func() error {
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("lab: WSL's address %s (%d, flags %#x) on #%d in %s: %w", p, op, flags, dev, l.wsl.name, err)
	}
	return nil
}

// ethIndex is eth0's index in the WSL namespace.
func (l *Lab) ethIndex() (int, error) {
	link, err := l.wsl.nl.LinkByName(EthName)
	if err != nil {
		return 0, fmt.Errorf("lab: %s in %s: %w", EthName, l.wsl.name, err)
	}
	return link.Attrs().Index, nil
}

// wslDefault is WSL's default route via gw (metric 0; the kernel makes an
// IPv6 one 1024).
func wslDefault(dev int, gw netip.Addr) wslRoute {
	return wslRoute{gw: gw, dev: dev, v6: gw.Is6()}
}

// windowsRoutes are the routes Windows announces for the WSL interface:
// the gateways, and in mirrored mode the on-link prefixes too (in NAT and
// consomme the kernel makes those from the address).
func (l *Lab) windowsRoutes(dev int, eth4 netip.Prefix, gw4 netip.Addr) []wslRoute {
	var out []wslRoute
	if l.opts.Mirrored {
		out = append(out, wslRoute{dst: eth4.Masked(), dev: dev})
		if l.opts.IPv6Underlay {
			out = append(out, wslRoute{dst: wslEth6.Masked(), dev: dev, v6: true})
		}
	}
	out = append(out, wslDefault(dev, gw4))
	if l.opts.IPv6Underlay {
		out = append(out, wslDefault(dev, hvWSL6.Addr()))
	}
	return out
}

// configureEth gives a new eth0 what WSL gives it at boot, eth0 already up:
// in NAT and consomme the IPv4 address as SetAdapterConfiguration adds it
// (the kernel makes its prefix route), the IPv6 underlay's address as
// before; in mirrored mode every address without a prefix route of the
// kernel's; then the routes Windows announces, each created. l.mu is held
// (or the lab is being built).
func (l *Lab) configureEth(dev int) error {
	mirrored := l.opts.Mirrored
	if err := l.sendAddr(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, dev, l.eth4, mirrored); err != nil {
		return err
	}
	if l.opts.IPv6Underlay {
		if err := l.sendAddr(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, dev, wslEth6, mirrored); err != nil {
			return err
		}
	}
	for _, r := range l.windowsRoutes(dev, l.eth4, l.gw4) {
		if err := l.sendRoute(unix.RTM_NEWROUTE, unix.NLM_F_CREATE, r); err != nil {
			return err
		}
	}
	return nil
}

// NATPush is WSL's MTU push to eth0 in NAT and consomme mode, after a
// Windows connectivity change moved the smallest adapter MTU (1500 when
// the Windows VPN disconnects, back to 1280, below 1280): SIOCSIFFLAGS
// with IFF_UP|IFF_RUNNING added to eth0's flags (no down/up cycle), then
// one RTM_NEWLINK carrying IFLA_MTU. Nothing else; below 1280 the kernel
// itself deletes eth0's IPv6 addresses and routes.
func (l *Lab) NATPush(mtu int) error {
	if err := checkMTU("eth0 MTU", mtu); err != nil {
		return err
	}
	dev, err := l.ethIndex()
	if err != nil {
		return err
	}
	return l.wsl.ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("lab: netlink socket in %s: %w", l.wsl.name, err)
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq(EthName)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("lab: SIOCGIFFLAGS %s in %s: %w", EthName, l.wsl.name, err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("lab: SIOCSIFFLAGS %s in %s: %w", EthName, l.wsl.name, err)
		}
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Index = int32(dev)
		req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
		req.AddData(msg)
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
		if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
			return fmt.Errorf("lab: RTM_NEWLINK %s mtu %d in %s: %w", EthName, mtu, l.wsl.name, err)
		}
		return nil
	})
}

// MirroredAddressRefresh is what WSL does to the mirrored eth0 on any
// Windows change: each address in turn (IPv4, then IPv6) is updated as
// NetworkManager::ModifyAddress does it — the main table's routes of the
// family listed, the address deleted and sent again with NLM_F_REPLACE
// and IFA_F_NOPREFIXROUTE, the listed gateway routes through eth0 created
// again — and then every route Windows holds for the interface is sent
// with NLM_F_CREATE|NLM_F_REPLACE and no metrics. Deleting the IPv4
// address flushes every IPv4 route through eth0, in every table, with no
// RTM_DELROUTE [kernel].
func (l *Lab) MirroredAddressRefresh() error {
	if !l.opts.Mirrored {
		return errors.New("lab: MirroredAddressRefresh needs a mirrored lab (Options.Mirrored)")
	}
	dev, err := l.ethIndex()
	if err != nil {
		return err
	}
	l.mu.Lock()
	eth4, gw4 := l.eth4, l.gw4
	l.mu.Unlock()
	addrs := []netip.Prefix{eth4}
	if l.opts.IPv6Underlay {
		addrs = append(addrs, wslEth6)
	}
	for _, a := range addrs {
		family := netlink.FAMILY_V4
		if a.Addr().Is6() {
			family = netlink.FAMILY_V6
		}
		saved, err := l.wsl.nl.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return fmt.Errorf("lab: list routes in %s: %w", l.wsl.name, err)
		}
		if err := l.sendAddr(unix.RTM_DELADDR, 0, dev, a, false); err != nil {
			return err
		}
		if err := l.sendAddr(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, dev, a, true); err != nil {
			return err
		}
		for _, r := range saved {
			if r.LinkIndex != dev || r.Gw == nil {
				continue
			}
			w := wslRoute{dev: dev, metric: r.Priority, v6: family == netlink.FAMILY_V6}
			w.gw, _ = netip.AddrFromSlice(r.Gw)
			w.gw = w.gw.Unmap()
			if r.Dst != nil && r.Dst.IP != nil {
				ones, _ := r.Dst.Mask.Size()
				ip, _ := netip.AddrFromSlice(r.Dst.IP)
				if ones > 0 {
					w.dst = netip.PrefixFrom(ip.Unmap(), ones)
				}
			}
			if err := l.sendRoute(unix.RTM_NEWROUTE, unix.NLM_F_CREATE, w); err != nil {
				return err
			}
		}
	}
	for _, r := range l.windowsRoutes(dev, eth4, gw4) {
		if err := l.sendRoute(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, r); err != nil {
			return err
		}
	}
	return nil
}

// RewriteDefaultRoutes is WSL's route Update for eth0's default routes on
// a Windows network change: each sent again with NLM_F_CREATE|NLM_F_REPLACE
// and no metrics, so an mtu on it is stripped.
func (l *Lab) RewriteDefaultRoutes() error {
	dev, err := l.ethIndex()
	if err != nil {
		return err
	}
	l.mu.Lock()
	gws := []netip.Addr{l.gw4}
	l.mu.Unlock()
	if l.opts.IPv6Underlay {
		gws = append(gws, hvWSL6.Addr())
	}
	for _, gw := range gws {
		if err := l.sendRoute(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, wslDefault(dev, gw)); err != nil {
			return err
		}
	}
	return nil
}

// ConsommeAddressChange is consomme's change of eth0's IPv4 address to p
// (Interface::SetConfiguration: the old address deleted, which flushes
// every IPv4 route through eth0 silently [kernel], the new one added as
// NAT's is, its prefix route the kernel's), then WSL's default route sent
// again (removed, which finds nothing, and created). Hyper-V's NAT covers
// p when it is in eth0's subnet (AltEthAddr4, EthAddr4).
func (l *Lab) ConsommeAddressChange(p netip.Prefix) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("lab: consomme address %s: want IPv4", p)
	}
	if !wslEth4.Masked().Contains(p.Addr()) {
		return fmt.Errorf("lab: consomme address %s: outside %s, which Hyper-V's NAT covers", p, wslEth4.Masked())
	}
	dev, err := l.ethIndex()
	if err != nil {
		return err
	}
	l.mu.Lock()
	old, gw := l.eth4, l.gw4
	l.mu.Unlock()
	if old == p {
		return nil
	}
	if err := l.sendAddr(unix.RTM_DELADDR, 0, dev, old, false); err != nil {
		return err
	}
	if err := l.sendAddr(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, dev, p, false); err != nil {
		return err
	}
	l.mu.Lock()
	l.eth4 = p
	l.mu.Unlock()
	if err := l.sendRoute(unix.RTM_DELROUTE, 0, wslDefault(dev, gw)); err != nil {
		return err
	}
	return l.sendRoute(unix.RTM_NEWROUTE, unix.NLM_F_CREATE, wslDefault(dev, gw))
}

// ConsommeGatewayChange is consomme's change of the default gateway
// (ConsommeNetworking::UpdateDefaultRoute): RTM_DELROUTE of the default
// route via the old gateway, then the new one created. Hyper-V's end of
// eth0 gets gw as an address of its own first, so traffic still flows.
func (l *Lab) ConsommeGatewayChange(gw netip.Addr) error {
	if !gw.Is4() || !wslEth4.Masked().Contains(gw) {
		return fmt.Errorf("lab: consomme gateway %s: want an IPv4 address in %s", gw, wslEth4.Masked())
	}
	dev, err := l.ethIndex()
	if err != nil {
		return err
	}
	hvEnd, err := l.hv.nl.LinkByName(hvWSLName)
	if err != nil {
		return fmt.Errorf("lab: %s in %s: %w", hvWSLName, l.hv.name, err)
	}
	have, err := l.hv.nl.AddrList(hvEnd, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("lab: addresses of %s in %s: %w", hvWSLName, l.hv.name, err)
	}
	if !slices.ContainsFunc(have, func(a netlink.Addr) bool { return a.IP.Equal(gw.AsSlice()) }) {
		a := netip.PrefixFrom(gw, wslEth4.Bits())
		if err := l.hv.nl.AddrAdd(hvEnd, &netlink.Addr{IPNet: prefixToIPNet(a)}); err != nil {
			return fmt.Errorf("lab: add %s to %s in %s: %w", a, hvWSLName, l.hv.name, err)
		}
	}
	l.mu.Lock()
	old := l.gw4
	l.mu.Unlock()
	if old == gw {
		return nil
	}
	if err := l.sendRoute(unix.RTM_DELROUTE, 0, wslDefault(dev, old)); err != nil {
		return err
	}
	if err := l.sendRoute(unix.RTM_NEWROUTE, unix.NLM_F_CREATE, wslDefault(dev, gw)); err != nil {
		return err
	}
	l.mu.Lock()
	l.gw4 = gw
	l.mu.Unlock()
	return nil
}

// VMRestart is `wsl --shutdown` and a new start: the VM reboots, so the WSL
// namespace is replaced by a new one (no policy rules, no tables but the
// kernel's, no iptables rules, no cached path MTUs), eth0 comes up at its
// driver's default 1500 with what WSL configures at boot (its addresses
// and routes, unchanged: WSL pushes another MTU with NATPush if Windows'
// minimum differs), and the tunnels are gone until the test starts them
// again (RestartTunnel, PortTunnel().Restart). The boot id changes. Stop
// the agent first: it died with the VM. The test's state directory, on
// the distro's disk, is the test's to keep.
func (l *Lab) VMRestart() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	for _, t := range l.tunnels() {
		if t.wslNode != nil {
			t.wslNode.kill()
			t.wslNode = nil
		}
	}
	// eth0 first: a socket somebody still holds in the old namespace would
	// keep it, and with it the veth pair, alive after `ip netns del`.
	if link, err := l.wsl.nl.LinkByName(EthName); err == nil {
		if err := l.wsl.nl.LinkDel(link); err != nil {
			return fmt.Errorf("lab: delete %s in %s: %w", EthName, l.wsl.name, err)
		}
	}
	name := l.wsl.name
	if err := l.wsl.close(); err != nil {
		return err
	}
	fresh, err := newSpace(name)
	if err != nil {
		return err
	}
	*l.wsl = *fresh
	if err := l.setupSpace(l.wsl); err != nil {
		return err
	}
	if err := l.wsl.sysctl("net.ipv6.conf.default.stable_secret", labStableSecret); err != nil {
		return err
	}
	if l.bootID, err = newBootID(); err != nil {
		return err
	}
	return l.createEth(DriverMTU)
}

// DriverMTU is eth0's MTU when the VM boots, before WSL's first push
// (hv_netvsc's default).
const DriverMTU = 1500

// BootID is the WSL kernel's /proc/sys/kernel/random/boot_id as the lab's
// Sources serve it: new after each VMRestart.
func (l *Lab) BootID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bootID
}

func newBootID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}

// --- tailscale0's two shapes ---

// TailscaleShape is what the lab's tailscale0 is.
type TailscaleShape int

const (
	// TailscaleMarked is tailscaled's shape: its sockets carry the mark
	// 0x80000, and once tailscale0 is up it adds its policy rules (5210
	// fwmark 0x80000/0xff0000 lookup main, 5230 the same lookup default,
	// 5250 the same unreachable, 5270 lookup 52, both families) and its
	// routes to the tailnet in table 52 (tailscale's
	// wgengine/router/osrouter). tailscaled has no UAPI socket: wgctrl cannot
	// read tailscale0.
	TailscaleMarked TailscaleShape = iota
	// TailscaleUnmarked is a bare wireguard-go device named tailscale0: no
	// mark, no rules, a UAPI socket through which wgctrl reads its listen
	// port. UAPI sockets live in the host's /var/run/wireguard, so labs of
	// this shape run one at a time, and never beside a marked one: New
	// waits (up to lockWait) until no other lab runs, so a test must not
	// hold another lab while it builds one of these.
	TailscaleUnmarked
)

func (s TailscaleShape) String() string {
	if s == TailscaleUnmarked {
		return "wireguard-go"
	}
	return "tailscaled"
}

// tailscaledTable is tailscaled's routing table.
const tailscaledTable = 52

func tailscaledRules() []*netlink.Rule {
	var out []*netlink.Rule
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		for _, r := range []struct {
			pref, table int
			mark        bool
			unreachable bool
		}{
			{5210, unix.RT_TABLE_MAIN, true, false},
			{5230, unix.RT_TABLE_DEFAULT, true, false},
			{5250, 0, true, true},
			{5270, tailscaledTable, false, false},
		} {
			nr := netlink.NewRule()
			nr.Family, nr.Priority, nr.Table = family, r.pref, r.table
			if r.mark {
				mask := uint32(0xff0000)
				nr.Mark, nr.Mask = TailscaleMark, &mask
			}
			if r.unreachable {
				nr.Type = unix.RTN_UNREACHABLE
			}
			out = append(out, nr)
		}
	}
	return out
}

// addTailscaledRules is what tailscaled does once tailscale0 is up: its
// rules and its routes to the peer in table 52.
func (l *Lab) addTailscaledRules(t *Tunnel) error {
	for _, r := range tailscaledRules() {
		if err := l.wsl.nl.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("lab: tailscaled's rule %d in %s: %w", r.Priority, l.wsl.name, err)
		}
	}
	link, err := l.wsl.nl.LinkByName(t.name)
	if err != nil {
		return fmt.Errorf("lab: %s in %s: %w", t.name, l.wsl.name, err)
	}
	peers := []netip.Addr{t.peer4.Addr()}
	if link.Attrs().MTU >= minIPv6MTU {
		peers = append(peers, t.peer6.Addr())
	}
	for _, p := range peers {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Table: tailscaledTable, Dst: prefixToIPNet(netip.PrefixFrom(p, p.BitLen()))}
		if err := l.wsl.nl.RouteAdd(r); err != nil {
			return fmt.Errorf("lab: tailscaled's route to %s in %s: %w", p, l.wsl.name, err)
		}
	}
	return nil
}

// delTailscaledRules is tailscaled stopping: its rules go (its routes go
// with tailscale0).
func (l *Lab) delTailscaledRules() {
	for _, r := range tailscaledRules() {
		_ = l.wsl.nl.RuleDel(r)
	}
}

// DeleteTailscaledRules takes tailscaled's fwmark rules away while its
// tailscale0 stays, as a user's `ip rule del` would: nothing then shows
// which packets are the tunnel's.
func (l *Lab) DeleteTailscaledRules() { l.delTailscaledRules() }

// bootRoot is the host's root with the lab's WSL boot id.
type bootRoot struct {
	fs.FS
	l *Lab
}

const bootIDPath = "proc/sys/kernel/random/boot_id"

func (b bootRoot) Open(name string) (fs.File, error) {
	if name == bootIDPath {
		data := b.l.BootID() + "\n"
		return bootIDFile{Reader: strings.NewReader(data), size: int64(len(data))}, nil
	}
	return b.FS.Open(name)
}

// bootIDFile is the lab's boot_id as an open file. (testing/fstest would
// do, but the demo binary must not link package testing.)
type bootIDFile struct {
	*strings.Reader
	size int64
}

func (f bootIDFile) Stat() (fs.FileInfo, error) { return f, nil }
func (bootIDFile) Close() error                 { return nil }
func (bootIDFile) Name() string                 { return "boot_id" }
func (f bootIDFile) Size() int64                { return f.size }
func (bootIDFile) Mode() fs.FileMode            { return 0o444 }
func (bootIDFile) ModTime() time.Time           { return time.Time{} }
func (bootIDFile) IsDir() bool                  { return false }
func (bootIDFile) Sys() any                     { return nil }
