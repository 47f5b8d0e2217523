package fakekernel

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/netwatch"
)

// Addresses, kept apart from the rest of the fake: WSL refreshes them (in
// mirrored and consomme modes) and the kernel then flushes routes without
// a route event, which is what these helpers replay.

// AddAddr adds an address (e.g. "172.28.0.2/20") to a link, as WSL does
// (RTM_NEWADDR); not recorded as a write of the code under test.
func (k *Kernel) AddAddr(name, prefix string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	a, err := k.addrOf(name, prefix)
	if err != nil {
		return err
	}
	if slices.Contains(k.addrs[a.LinkIndex], prefix) {
		return fmt.Errorf("address %s on %s: file exists", prefix, name)
	}
	if k.addrs == nil {
		k.addrs = map[int][]string{}
	}
	k.addrs[a.LinkIndex] = append(k.addrs[a.LinkIndex], prefix)
	k.emit(netwatch.Event{At: time.Now(), Addr: &a})
	return nil
}

// DeleteAddr deletes an address (RTM_DELADDR). As the kernel does, deleting
// a link's last IPv4 address flushes every IPv4 route through it, in every
// table, and sends no RTM_DELROUTE for them: the address event is all.
func (k *Kernel) DeleteAddr(name, prefix string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	a, err := k.addrOf(name, prefix)
	if err != nil {
		return err
	}
	have := k.addrs[a.LinkIndex]
	if !slices.Contains(have, prefix) {
		return fmt.Errorf("address %s on %s: cannot assign requested address", prefix, name)
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
	return nil
}

func (k *Kernel) addrOf(name, prefix string) (netwatch.Addr, error) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return netwatch.Addr{}, fmt.Errorf("address %q: %w", prefix, err)
	}
	idx := k.indexOf(name)
	if _, ok := k.links[idx]; !ok {
		return netwatch.Addr{}, fmt.Errorf("interface %q not found", name)
	}
	family := 6
	if p.Addr().Is4() {
		family = 4
	}
	return netwatch.Addr{LinkIndex: idx, Family: family, Prefix: prefix}, nil
}
