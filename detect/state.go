package detect

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/wslmtu/wslmtu/internal/config"
)

// Link is one network interface as the planner needs to see it.
type Link struct {
	Name      string `json:"name"`
	Index     int    `json:"index"`
	MTU       int    `json:"mtu"`
	Kind      string `json:"kind,omitempty"` // veth, tun, device, …
	Up        bool   `json:"up"`
	IPv6Addrs int    `json:"ipv6_addresses"` // global and unique-local ones, which a too-low MTU deletes
}

// Netlink is the part of the kernel's view detection needs.
type Netlink interface {
	Links() ([]Link, error)
	// DefaultRouteIndex is the interface holding the IPv4 default route,
	// else the IPv6 one; 0 when there is none.
	DefaultRouteIndex() (int, error)
}

// State is one observation of the host.
type State struct {
	Env   Environment `json:"environment"`
	Links []Link      `json:"links"`
	// Outer carries the tunnels' encrypted packets: eth0 under WSL's NAT.
	Outer    *Link  `json:"outer,omitempty"`
	OuterWhy string `json:"outer_why,omitempty"`
	Tunnels  []Link `json:"tunnels"`
	// DownTunnels match the tunnel patterns but are not up. They carry
	// nothing, and tailscaled and wireguard-go create a tun at 1500 before
	// setting its MTU and bringing it up, so sizing eth0 for one would raise
	// it for a value that never carries traffic.
	DownTunnels []Link `json:"down_tunnels,omitempty"`
	// MissingTunnels are configured tunnel names (not patterns) that do not exist now.
	MissingTunnels []string `json:"missing_tunnels,omitempty"`
}

// Observe reads the environment and the links once.
func Observe(src Sources, nl Netlink, cfg config.Config) (State, error) {
	links, err := nl.Links()
	if err != nil {
		return State{}, fmt.Errorf("listing interfaces: %w", err)
	}
	env := DetectEnvironment(src, links)
	if !env.WSL && cfg.AssumeWSL {
		env.WSL, env.Version, env.Assumed = true, 2, true
		if env.NetworkingMode == "" {
			env.NetworkingMode = networkingMode(src, links)
		}
	}
	return observeLinks(env, links, nl, cfg)
}

// ObserveLinks is Observe with an environment detected before: the agent
// detects it once, since a host does not stop being WSL while it runs.
func ObserveLinks(env Environment, nl Netlink, cfg config.Config) (State, error) {
	links, err := nl.Links()
	if err != nil {
		return State{}, fmt.Errorf("listing interfaces: %w", err)
	}
	return observeLinks(env, links, nl, cfg)
}

func observeLinks(env Environment, links []Link, nl Netlink, cfg config.Config) (State, error) {
	sort.Slice(links, func(i, j int) bool { return links[i].Index < links[j].Index })
	st := State{Env: env, Links: links}

	isTunnel := cfg.IsTunnel
	for _, l := range links {
		switch {
		case !isTunnel(l.Name) || l.Name == cfg.OuterInterface:
		case l.Up:
			st.Tunnels = append(st.Tunnels, l)
		default:
			st.DownTunnels = append(st.DownTunnels, l)
		}
	}
	for _, pattern := range cfg.Tunnels {
		if !strings.ContainsAny(pattern, "*?[") && findLink(links, pattern) == nil {
			st.MissingTunnels = append(st.MissingTunnels, pattern)
		}
	}

	if cfg.OuterInterface != "" {
		l := findLink(links, cfg.OuterInterface)
		if l == nil {
			return State{}, &NotFoundError{What: "outer interface", Name: cfg.OuterInterface, Have: linkNames(links)}
		}
		st.Outer, st.OuterWhy = l, "outer_interface in the config"
		return st, nil
	}
	index, err := nl.DefaultRouteIndex()
	if err != nil {
		return State{}, fmt.Errorf("reading the default route: %w", err)
	}
	for i := range links {
		// A default route through a tunnel (an exit node) says nothing about
		// the underlay, so it never makes the tunnel its own outer interface.
		if links[i].Index == index && !isTunnel(links[i].Name) {
			l := links[i]
			st.Outer, st.OuterWhy = &l, "holds the default route"
		}
	}
	if st.Outer == nil {
		if l := findLink(links, "eth0"); l != nil {
			st.Outer, st.OuterWhy = l, "no default route; eth0 is WSL's NAT interface"
		}
	}
	return st, nil
}

// Link returns the observed link with that name, or nil.
func (s State) Link(name string) *Link { return findLink(s.Links, name) }

func findLink(links []Link, name string) *Link {
	for i := range links {
		if links[i].Name == name {
			l := links[i]
			return &l
		}
	}
	return nil
}

func linkNames(links []Link) string {
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Name)
	}
	return strings.Join(names, ", ")
}

// NotFoundError is a configured interface that does not exist: bad input,
// not a failure of the host.
type NotFoundError struct {
	What, Name, Have string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %q not found (interfaces: %s)", e.What, e.Name, e.Have)
}

// IsDefaultRoute says whether a route destination is 0.0.0.0/0 or ::/0;
// netlink reports it as nil or as the zero network, depending on version.
func IsDefaultRoute(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return dst.IP.IsUnspecified() && ones == 0
}
