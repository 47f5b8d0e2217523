package fakekernel

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/netwatch"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// WSL's own sequences, as microsoft/WSL's guest side (src/linux/init,
// src/linux/netlinkutil) sends them, and what the kernel does with each
// message: the events a netlink subscriber sees, and no others. The kernel
// behaviours modelled here were checked against Linux 6.18 with `ip monitor`:
//   - deleting a link's last IPv4 address sends RTM_DELADDR, RTM_DELROUTE for
//     the address's own prefix route, and then flushes every other IPv4 route
//     through the link, in every table, without a word;
//   - an MTU below 1280 deletes the link's IPv6 routes and addresses (the
//     fake has no link-local addresses, so an MTU back at 1280 brings
//     nothing back; the kernel restores the link-local one and fe80::/64);
//   - an IPv6 RTM_NEWADDR is sent from a work queue, so it may come after
//     the events of later messages; the fake sends it at once;
//   - RTM_NEWROUTE with NLM_F_CREATE alone inserts a second IPv4 route beside
//     one that differs only in its metrics (an mtu), and is a silent no-op on
//     an identical one; with NLM_F_REPLACE it replaces the first route of the
//     same destination and metric, silently for IPv4 when nothing differs.

// addr is one address on a link.
type addr struct {
	prefix netip.Prefix
	// noPrefixRoute is IFA_F_NOPREFIXROUTE: the kernel adds no route for
	// the address's subnet (WSL's mirrored addresses, whose prefix routes
	// WSL sends itself).
	noPrefixRoute bool
}

// DriverMTU is eth0's MTU when a WSL VM boots, before WSL's first push
// (hv_netvsc's default).
const DriverMTU = 1500

// AddAddr adds an address (e.g. "172.28.0.2/20") to a link as `ip addr
// add` does: RTM_NEWADDR, and for the kernel's prefix route RTM_NEWROUTE.
func (k *Kernel) AddAddr(name, prefix string) error {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return fmt.Errorf("address %q: %w", prefix, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := k.indexOf(name)
	if _, ok := k.links[idx]; !ok {
		return fmt.Errorf("interface %q not found", name)
	}
	if k.hasAddrLocked(idx, p) {
		return fmt.Errorf("address %s on %s: file exists", p, name)
	}
	k.addAddrLocked(idx, addr{prefix: p})
	return nil
}

// DeleteAddr deletes an address from a link as `ip addr del` does, with the
// kernel's consequences (see the top of this file).
func (k *Kernel) DeleteAddr(name, prefix string) error {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return fmt.Errorf("address %q: %w", prefix, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := k.indexOf(name)
	if !k.hasAddrLocked(idx, p) {
		return fmt.Errorf("address %s on %s: cannot assign requested address", p, name)
	}
	k.delAddrLocked(idx, p)
	return nil
}

// Addrs lists a link's addresses, IPv4 first.
func (k *Kernel) Addrs(name string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, a := range k.sortedAddrsLocked(k.indexOf(name)) {
		out = append(out, a.prefix.String())
	}
	return out
}

// NATPush is WSL's MTU push to eth0 in NAT and consomme mode
// (GnsEngine::ProcessLinkChange): SIOCSIFFLAGS with IFF_UP added, which is
// an event only if eth0 was down, then RTM_NEWLINK with IFLA_MTU, which the
// kernel announces only if the MTU differs. Nothing else; below 1280 the
// kernel itself deletes eth0's IPv6 addresses and routes.
func (k *Kernel) NATPush(mtu int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := k.mustIndexLocked("eth0")
	l := k.links[idx]
	if !l.Up {
		l.Up = true
		k.links[idx] = l
		k.emitLink(l, false)
	}
	if l.MTU != mtu {
		k.setMTULocked(idx, mtu)
	}
}

// MirroredAddressRefresh is what WSL does to a mirrored interface on any
// Windows change: each address in turn is updated (NetworkManager::
// ModifyAddress with Update: the main table's routes are saved, the address
// deleted and added again with NLM_F_REPLACE and IFA_F_NOPREFIXROUTE, and
// the saved gateway routes through the link re-added with NLM_F_CREATE),
// then every route Windows holds for the interface is sent again with
// NLM_F_CREATE|NLM_F_REPLACE and no metrics, so an mtu on it is stripped.
// Windows' routes are taken to be the main table's routes through the link
// when the refresh starts.
func (k *Kernel) MirroredAddressRefresh(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := k.mustIndexLocked(name)
	var windows []detect.Route
	for _, r := range k.routes {
		if r.Table == detect.MainTable && r.LinkIndex == idx {
			r.MTU = 0
			if r.Family == 6 && !r.IsDefault() {
				r.Metric = 1024 // Windows' on-link prefix, sent with metric 0
			}
			windows = append(windows, r)
		}
	}
	// In the order the lab sends them: on-link prefixes, then gateways, IPv4
	// first.
	sort.SliceStable(windows, func(i, j int) bool {
		if windows[i].IsDefault() != windows[j].IsDefault() {
			return !windows[i].IsDefault()
		}
		return windows[i].Family < windows[j].Family
	})
	for _, a := range k.sortedAddrsLocked(idx) {
		family := familyOf(a.prefix)
		var saved []detect.Route
		for _, r := range k.routes {
			if r.Family == family && r.Table == detect.MainTable {
				saved = append(saved, r)
			}
		}
		k.delAddrLocked(idx, a.prefix)
		k.addAddrLocked(idx, addr{prefix: a.prefix, noPrefixRoute: true})
		for _, r := range saved {
			if r.LinkIndex == idx && r.Gw != "" {
				r.MTU = 0
				k.wslCreateLocked(r)
			}
		}
	}
	for _, r := range windows {
		k.wslReplaceLocked(r)
	}
}

// ConsommeAddressChange is consomme's IPv4 address change on a link
// (Interface::SetConfiguration: the old address deleted, the new one added
// with NLM_F_CREATE|NLM_F_EXCL, its prefix route the kernel's), then WSL
// adding its default route again through the link (remove, which finds
// nothing after the flush, and create). newPrefix is e.g. "172.28.0.3/20".
func (k *Kernel) ConsommeAddressChange(name, newPrefix string) error {
	p, err := netip.ParsePrefix(newPrefix)
	if err != nil || !p.Addr().Is4() {
		return fmt.Errorf("consomme address %q: want an IPv4 prefix", newPrefix)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := k.mustIndexLocked(name)
	var gws []detect.Route
	for _, r := range k.routes {
		if r.Family == 4 && r.Table == detect.MainTable && r.LinkIndex == idx && r.IsDefault() && r.Gw != "" {
			r.MTU = 0
			gws = append(gws, r)
		}
	}
	for _, a := range k.sortedAddrsLocked(idx) {
		if a.prefix.Addr().Is4() && a.prefix != p {
			k.delAddrLocked(idx, a.prefix)
		}
	}
	if !k.hasAddrLocked(idx, p) {
		k.addAddrLocked(idx, addr{prefix: p})
	}
	for _, r := range gws {
		k.wslDeleteLocked(r)
		k.wslCreateLocked(r)
	}
	return nil
}

// ConsommeGatewayChange is consomme's default gateway change
// (ConsommeNetworking::UpdateDefaultRoute): RTM_DELROUTE of the default
// route via the old gateway, then RTM_NEWROUTE (NLM_F_CREATE) of one via
// newGw, as AddDefaultRoute adds it.
func (k *Kernel) ConsommeGatewayChange(name, newGw string) error {
	gw, err := netip.ParseAddr(newGw)
	if err != nil || !gw.Is4() {
		return fmt.Errorf("consomme gateway %q: want an IPv4 address", newGw)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := k.mustIndexLocked(name)
	for _, r := range slices.Clone(k.routes) {
		if r.Family == 4 && r.Table == detect.MainTable && r.LinkIndex == idx && r.IsDefault() && r.Metric == 0 && r.Gw != "" {
			k.wslDeleteLocked(r)
		}
	}
	k.wslCreateLocked(wslDefault(idx, gw))
	return nil
}

// AddDefaultRoute adds WSL's default route via gw through a link: table
// main, NLM_F_CREATE only, proto kernel, metric 0, onlink, no metrics (the
// fake does not model protocol or flags). An identical route already there
// is no event, as in the kernel.
func (k *Kernel) AddDefaultRoute(name, gw string) error {
	a, err := netip.ParseAddr(gw)
	if err != nil {
		return fmt.Errorf("gateway %q: %w", gw, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.wslCreateLocked(wslDefault(k.mustIndexLocked(name), a))
	return nil
}

func wslDefault(idx int, gw netip.Addr) detect.Route {
	r := detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: gw.String(), LinkIndex: idx}
	if gw.Is6() {
		// The kernel gives an IPv6 route metric 0 its user default.
		r.Family, r.Metric = 6, 1024
	}
	return r
}

// VMRestart is `wsl --shutdown` and a new start: the distro's disk (and so
// the state directory) is kept, the kernel is new. lo and eth0 come back at
// indexes 1 and 2, eth0 up at DriverMTU with its addresses and the main
// table's routes through it as WSL configures them at boot (no metrics);
// there are no policy rules, no other tables, no tunnels and no WireGuard
// devices, and a new boot id. Subscriptions end with the old kernel (the
// agent died with the VM; stop it first).
func (k *Kernel) VMRestart() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, s := range k.subs {
		close(s.ch)
	}
	k.subs = nil
	old := k.indexOf("eth0")
	eth, ok := k.links[old]
	if !ok {
		panic("fakekernel: no eth0 to restart with")
	}
	addrs := k.addrs[old]
	var routes []detect.Route
	for _, r := range k.routes {
		if r.Table == detect.MainTable && r.LinkIndex == old {
			r.MTU, r.LinkIndex = 0, 2
			routes = append(routes, r)
		}
	}
	lo := k.links[1]
	eth.Index, eth.MTU, eth.Up, eth.IPv6Addrs = 2, DriverMTU, true, 0
	for _, a := range addrs {
		if a.prefix.Addr().Is6() {
			eth.IPv6Addrs++
		}
	}
	k.links = map[int]detect.Link{1: lo, 2: eth}
	k.addrs = map[int][]addr{2: addrs}
	k.routes, k.rules = routes, nil
	k.wg = map[string]detect.WireGuardDevice{}
	k.lastIndex, k.writes = 2, nil
	k.boot++
}

// BootID is /proc/sys/kernel/random/boot_id for this kernel: new after
// each VMRestart.
func (k *Kernel) BootID() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return fmt.Sprintf("6f1c2b8e-0d4a-4c1e-9b7a-%012x", k.boot+1)
}

// TailscaledPort is the port tailscaled listens on by default.
const TailscaledPort = 41641

// AddTailscaledRules adds what tailscaled's Linux router adds once
// tailscale0 is up (tailscale's wgengine/router/osrouter, baseIPRules plus
// its route table 52), for both families: 5210 fwmark 0x80000/0xff0000
// lookup main, 5230 the same lookup default, 5250 the same unreachable,
// 5270 lookup 52; table 52 routes the peer (100.64.0.2, fd7a:115c:a1e0::2)
// through tailscale0. Its sockets carry that mark; tailscale0 itself is no
// device wgctrl can read.
func (k *Kernel) AddTailscaledRules() {
	k.mu.Lock()
	defer k.mu.Unlock()
	ts := k.mustIndexLocked("tailscale0")
	for _, family := range []int{4, 6} {
		for _, r := range TailscaledRules(family) {
			k.rules = append(k.rules, r)
			k.emitRules()
		}
	}
	for _, r := range []detect.Route{
		{Family: 4, Table: 52, Dst: "100.64.0.2/32", LinkIndex: ts},
		{Family: 6, Table: 52, Dst: "fd7a:115c:a1e0::2/128", LinkIndex: ts, Metric: 1024},
	} {
		k.routes = append(k.routes, r)
		k.emitRoute(r, false)
	}
}

// Path is where the kernel sends a packet: the rule that decided, the route
// and its device, and the largest packet that leaves whole.
type Path struct {
	Rule  int // 32766 for the main table's default rule
	Route detect.Route
	Dev   string
	MTU   int
}

// Lookup routes a packet of a family with a firewall mark and (for UDP) a
// source port, to dst, through the policy rules as the kernel does: by
// priority, then the default rules (32766 main, 32767 default); a rule's
// suppress_prefixlength ignores routes no more specific than it; a rule of
// another kind (Other) is skipped, except one with no table, which is
// tailscaled's unreachable rule. An error is a packet that goes nowhere.
func (k *Kernel) Lookup(family int, mark uint32, sport int, dst string) (Path, error) {
	to, err := netip.ParseAddr(dst)
	if err != nil {
		return Path{}, fmt.Errorf("destination %q: %w", dst, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	rules := slices.Clone(k.rules)
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Priority < rules[j].Priority })
	rules = append(rules,
		detect.Rule{Family: family, Priority: 32766, Table: detect.MainTable, SuppressPrefixlen: -1},
		detect.Rule{Family: family, Priority: 32767, Table: 253, SuppressPrefixlen: -1})
	for _, ru := range rules {
		switch {
		case ru.Family != family:
			continue
		case ru.Mask != 0 && mark&ru.Mask != ru.Mark:
			continue
		case ru.Sport != 0 && (ru.IPProto != 17 || ru.Sport != sport):
			continue
		case ru.Other && ru.Table == 0:
			return Path{Rule: ru.Priority}, fmt.Errorf("network unreachable (rule %s)", ru)
		case ru.Other:
			continue
		}
		r, bits, ok := k.bestLocked(family, ru.Table, to)
		if !ok || (ru.SuppressPrefixlen >= 0 && bits <= ru.SuppressPrefixlen) {
			continue
		}
		l := k.links[r.LinkIndex]
		mtu := l.MTU
		if r.MTU > 0 {
			mtu = min(mtu, r.MTU)
		}
		return Path{Rule: ru.Priority, Route: r, Dev: l.Name, MTU: mtu}, nil
	}
	return Path{}, fmt.Errorf("no route to %s", dst)
}

// bestLocked is the longest-prefix match in a table through an up link;
// among equals the lowest metric, then the first.
func (k *Kernel) bestLocked(family, table int, to netip.Addr) (detect.Route, int, bool) {
	var best detect.Route
	bits, found := -1, false
	for _, r := range k.routes {
		if r.Family != family || r.Table != table || !k.links[r.LinkIndex].Up {
			continue
		}
		p, ok := routePrefix(r)
		if !ok || !p.Contains(to) {
			continue
		}
		if !found || p.Bits() > bits || (p.Bits() == bits && r.Metric < best.Metric) {
			best, bits, found = r, p.Bits(), true
		}
	}
	return best, bits, found
}

func routePrefix(r detect.Route) (netip.Prefix, bool) {
	if r.IsDefault() {
		if r.Family == 6 {
			return netip.MustParsePrefix("::/0"), true
		}
		return netip.MustParsePrefix("0.0.0.0/0"), true
	}
	p, err := netip.ParsePrefix(r.Dst)
	return p, err == nil
}

// RoutingDump is the rules of both families by priority and the routes of
// every table, one per line, with the links' MTUs and addresses: what the
// kernel holds, in an order that depends on nothing but that (the kernel
// dumps its tables in key order too), to compare before and after.
func (k *Kernel) RoutingDump() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var b strings.Builder
	idx := make([]int, 0, len(k.links))
	for i := range k.links {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		l := k.links[i]
		fmt.Fprintf(&b, "link %d %s mtu %d up %v", l.Index, l.Name, l.MTU, l.Up)
		for _, a := range k.sortedAddrsLocked(i) {
			fmt.Fprintf(&b, " %s", a.prefix)
			if a.noPrefixRoute {
				b.WriteString(" noprefixroute")
			}
		}
		b.WriteString("\n")
	}
	rules := slices.Clone(k.rules)
	sort.SliceStable(rules, func(i, j int) bool {
		if rules[i].Family != rules[j].Family {
			return rules[i].Family < rules[j].Family
		}
		return rules[i].Priority < rules[j].Priority
	})
	for _, r := range rules {
		fmt.Fprintf(&b, "%s rule %s\n", detect.Tool(r.Family), r)
	}
	var routes []string
	for _, r := range k.routes {
		line := fmt.Sprintf("ip -%d route %s", r.Family, k.named(r))
		if r.Table == detect.MainTable {
			line += " table main"
		}
		if r.MTU != 0 {
			line += fmt.Sprintf(" mtu %d", r.MTU)
		}
		routes = append(routes, line)
	}
	sort.Strings(routes)
	b.WriteString(strings.Join(routes, "\n"))
	return b.String()
}

// --- the kernel's side ---

func (k *Kernel) mustIndexLocked(name string) int {
	idx := k.indexOf(name)
	if _, ok := k.links[idx]; !ok {
		panic("fakekernel: no interface " + name)
	}
	return idx
}

func familyOf(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 4
	}
	return 6
}

func (k *Kernel) hasAddrLocked(idx int, p netip.Prefix) bool {
	return slices.ContainsFunc(k.addrs[idx], func(a addr) bool { return a.prefix == p })
}

func (k *Kernel) sortedAddrsLocked(idx int) []addr {
	out := slices.Clone(k.addrs[idx])
	sort.SliceStable(out, func(i, j int) bool { return out[i].prefix.Addr().Is4() && !out[j].prefix.Addr().Is4() })
	return out
}

// prefixRoute is the route the kernel adds for an address's subnet.
func prefixRoute(idx int, p netip.Prefix) (detect.Route, bool) {
	if p.Bits() == p.Addr().BitLen() {
		return detect.Route{}, false
	}
	r := detect.Route{Family: familyOf(p), Table: detect.MainTable, Dst: p.Masked().String(), LinkIndex: idx}
	if r.Family == 6 {
		r.Metric = 256
	}
	return r, true
}

func (k *Kernel) emitAddr(idx int, p netip.Prefix, gone bool) {
	k.emit(netwatch.Event{At: time.Now(), Addr: &netwatch.Addr{LinkIndex: idx, Family: familyOf(p), Prefix: p.String()}, Gone: gone})
}

func (k *Kernel) addAddrLocked(idx int, a addr) {
	k.addrs[idx] = append(k.addrs[idx], a)
	if a.prefix.Addr().Is6() {
		l := k.links[idx]
		l.IPv6Addrs++
		k.links[idx] = l
	}
	k.emitAddr(idx, a.prefix, false)
	if r, ok := prefixRoute(idx, a.prefix); ok && !a.noPrefixRoute && !slices.ContainsFunc(k.routes, r.Same) {
		k.routes = append(k.routes, r)
		k.emitRoute(r, false)
	}
}

func (k *Kernel) delAddrLocked(idx int, p netip.Prefix) {
	i := slices.IndexFunc(k.addrs[idx], func(a addr) bool { return a.prefix == p })
	a := k.addrs[idx][i]
	k.addrs[idx] = slices.Delete(k.addrs[idx], i, i+1)
	if p.Addr().Is6() {
		l := k.links[idx]
		l.IPv6Addrs = max(0, l.IPv6Addrs-1)
		k.links[idx] = l
	}
	k.emitAddr(idx, p, true)
	sameSubnet := slices.ContainsFunc(k.addrs[idx], func(o addr) bool { return o.prefix.Masked() == p.Masked() })
	if r, ok := prefixRoute(idx, p); ok && !a.noPrefixRoute && !sameSubnet {
		if j := slices.IndexFunc(k.routes, r.Same); j >= 0 {
			gone := k.routes[j]
			k.routes = slices.Delete(k.routes, j, j+1)
			k.emitRoute(gone, true)
		}
	}
	if p.Addr().Is4() && !slices.ContainsFunc(k.addrs[idx], func(o addr) bool { return o.prefix.Addr().Is4() }) {
		// The last IPv4 address: fib_disable_ip flushes the rest silently.
		k.routes = slices.DeleteFunc(k.routes, func(r detect.Route) bool { return r.Family == 4 && r.LinkIndex == idx })
	}
}

// setMTULocked sets a link's MTU (which must differ) with the kernel's
// consequences: RTM_NEWLINK, and below 1280 the link's IPv6 addresses and
// routes deleted, each announced.
func (k *Kernel) setMTULocked(idx, mtu int) {
	l := k.links[idx]
	l.MTU = mtu
	k.links[idx] = l
	k.emitLink(l, false)
	if mtu >= tunnel.MinIPv6MTU {
		return
	}
	// addrconf_ifdown: the routes first (rt6_disable_ip), then the addresses.
	for _, r := range slices.Clone(k.routes) {
		if r.Family == 6 && r.LinkIndex == idx {
			k.routes = slices.DeleteFunc(k.routes, func(o detect.Route) bool { return o == r })
			k.emitRoute(r, true)
		}
	}
	for _, a := range k.sortedAddrsLocked(idx) {
		if a.prefix.Addr().Is6() {
			k.addrs[idx] = slices.DeleteFunc(k.addrs[idx], func(o addr) bool { return o.prefix == a.prefix })
			k.emitAddr(idx, a.prefix, true)
		}
	}
	l.IPv6Addrs = 0
	k.links[idx] = l
}

// sameKey: the same table entry as far as NLM_F_EXCL and NLM_F_REPLACE go
// (family, table, destination, metric).
func sameKey(a, b detect.Route) bool {
	return a.Family == b.Family && a.Table == b.Table && a.Dst == b.Dst && a.Metric == b.Metric
}

// wslCreateLocked is RTM_NEWROUTE with NLM_F_CREATE alone, as WSL sends it
// (EEXIST, which WSL ignores, on an identical route).
func (k *Kernel) wslCreateLocked(r detect.Route) {
	for _, have := range k.routes {
		if !sameKey(have, r) {
			continue
		}
		if have.Same(r) && (have.MTU == r.MTU || r.Family == 6) {
			// IPv4: the same fib_info; IPv6: the same nexthop, whatever the metrics.
			return
		}
	}
	// IPv4 puts the new alias before the others of its key; order is not
	// modelled beyond that (Lookup takes the lowest metric, then the first).
	i := slices.IndexFunc(k.routes, func(have detect.Route) bool { return sameKey(have, r) })
	if i < 0 {
		k.routes = append(k.routes, r)
	} else {
		k.routes = slices.Insert(k.routes, i, r)
	}
	k.emitRoute(r, false)
}

// wslReplaceLocked is RTM_NEWROUTE with NLM_F_CREATE|NLM_F_REPLACE: the
// first route of the key is replaced, silently for IPv4 if nothing
// differs (IPv6 announces every replace).
func (k *Kernel) wslReplaceLocked(r detect.Route) {
	for i, have := range k.routes {
		if !sameKey(have, r) {
			continue
		}
		if have == r && r.Family == 4 {
			return
		}
		k.routes[i] = r
		k.emitRoute(r, false)
		return
	}
	k.routes = append(k.routes, r)
	k.emitRoute(r, false)
}

// wslDeleteLocked is WSL's RTM_DELROUTE: the first route of the key via
// the same gateway and device, whatever its metrics (ESRCH, which WSL
// ignores, when there is none).
func (k *Kernel) wslDeleteLocked(r detect.Route) {
	i := slices.IndexFunc(k.routes, r.Same)
	if i < 0 {
		return
	}
	gone := k.routes[i]
	k.routes = slices.Delete(k.routes, i, i+1)
	k.emitRoute(gone, true)
}
