package fakekernel

import (
	"net/netip"
	"slices"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/netwatch"
)

// Addresses, kept apart from the rest of the fake: WSL refreshes them (in
// mirrored and consomme modes) and the kernel then flushes routes without
// a route event, which is what these helpers replay.

// AddAddr gives a link an address, as WSL does (RTM_NEWADDR); not recorded
// as a write of the code under test.
func (k *Kernel) AddAddr(link, prefix string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	a := k.addr(link, prefix)
	if k.addrs == nil {
		k.addrs = map[int][]string{}
	}
	if !slices.Contains(k.addrs[a.LinkIndex], prefix) {
		k.addrs[a.LinkIndex] = append(k.addrs[a.LinkIndex], prefix)
	}
	k.emit(netwatch.Event{At: time.Now(), Addr: &a})
}

// DeleteAddr removes an address (RTM_DELADDR). As the kernel does, deleting
// a link's last IPv4 address flushes every IPv4 route through it, in every
// table, and sends no RTM_DELROUTE for them: the address event is all.
func (k *Kernel) DeleteAddr(link, prefix string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	a := k.addr(link, prefix)
	have := k.addrs[a.LinkIndex]
	if !slices.Contains(have, prefix) {
		panic("fakekernel: " + link + " has no address " + prefix)
	}
	have = slices.DeleteFunc(have, func(p string) bool { return p == prefix })
	k.addrs[a.LinkIndex] = have
	lastIPv4 := a.Family == 4 && !slices.ContainsFunc(have, func(p string) bool {
		return netip.MustParsePrefix(p).Addr().Is4()
	})
	if lastIPv4 {
		k.routes = slices.DeleteFunc(k.routes, func(r detect.Route) bool { return r.Family == 4 && r.LinkIndex == a.LinkIndex })
	}
	k.emit(netwatch.Event{At: time.Now(), Addr: &a, Gone: true})
}

func (k *Kernel) addr(link, prefix string) netwatch.Addr {
	idx := k.indexOf(link)
	if idx == 0 {
		panic("fakekernel: no interface " + link)
	}
	family := 6
	if netip.MustParsePrefix(prefix).Addr().Is4() {
		family = 4
	}
	return netwatch.Addr{LinkIndex: idx, Family: family, Prefix: prefix}
}
