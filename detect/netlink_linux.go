package detect

import (
	"errors"
	"os"
	"os/exec"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernel reads links and routes over a netlink handle; a handle made with
// netlink.NewHandleAt works on another namespace, which is how tests use it.
type Kernel struct {
	H *netlink.Handle
}

func (k *Kernel) Close() { k.H.Close() }

func (k *Kernel) Links() ([]Link, error) {
	nlLinks, err := k.H.LinkList()
	if err != nil {
		return nil, err
	}
	// One dump of all IPv6 addresses instead of one per link: the agent
	// observes on every relevant event, and per-link dumps dominated its cost.
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
		attrs := nl.Attrs()
		l := Link{Name: attrs.Name, Index: attrs.Index, MTU: attrs.MTU, Kind: nl.Type(),
			Up: attrs.Flags&unix.IFF_UP != 0, IPv6Addrs: globalV6[attrs.Index]}
		if l.Kind == "tuntap" {
			l.Kind = "tun"
		}
		links = append(links, l)
	}
	return links, nil
}

func (k *Kernel) DefaultRouteIndex() (int, error) {
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := k.H.RouteList(nil, family)
		if err != nil {
			return 0, err
		}
		best, bestPriority := 0, -1
		for _, r := range routes {
			if !IsDefaultRoute(r.Dst) || r.LinkIndex == 0 {
				continue
			}
			if bestPriority < 0 || r.Priority < bestPriority {
				best, bestPriority = r.LinkIndex, r.Priority
			}
		}
		if best != 0 {
			return best, nil
		}
	}
	return 0, nil
}

// HostSources reads the real host: "/" and the process environment.
func HostSources() Sources {
	return Sources{Root: os.DirFS("/"), Getenv: os.Getenv, Run: runIfPresent}
}

var errNotInstalled = errors.New("not installed")

func runIfPresent(name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, errNotInstalled
	}
	return exec.Command(name, args...).Output()
}
