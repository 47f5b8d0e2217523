package detect

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"sort"
	"strings"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// Link is one network interface as the planner needs to see it.
type Link struct {
	Name      string `json:"name"`
	Index     int    `json:"index"`
	MTU       int    `json:"mtu"`
	Kind      string `json:"kind,omitempty"` // veth, tun, wireguard, device, …
	Up        bool   `json:"up"`
	IPv6Addrs int    `json:"ipv6_addresses"` // global and unique-local ones, which a too-low MTU deletes
	// Tunnel is set on tunnels: their kind, what selected them and how their
	// own packets are recognised.
	Tunnel *TunnelInfo `json:"tunnel,omitempty"`
}

// TunnelInfo is what is known about one tunnel beyond its link.
type TunnelInfo struct {
	Spec tunnel.Spec `json:"spec"`
	// Pattern is the tunnel pattern or [[tunnel]] name that selected it, or
	// "netlink kind wireguard".
	Pattern string `json:"pattern"`
	// Mark (Mask ≠ 0) or Port identifies the tunnel's own outer packets, for
	// outer_scope = "tunnel"; IdentifiedBy says how that was learnt, and
	// Unidentified why neither is known.
	Mark         uint32 `json:"fwmark,omitempty"`
	Mask         uint32 `json:"fwmask,omitempty"`
	Port         int    `json:"port,omitempty"`
	IdentifiedBy string `json:"identified_by,omitempty"`
	Unidentified string `json:"unidentified,omitempty"`
}

// Identified says whether the tunnel's own packets can be told apart.
func (t *TunnelInfo) Identified() bool { return t != nil && (t.Mask != 0 || t.Port != 0) }

// Selector describes how the tunnel's packets are selected, as `ip rule`
// writes it: "fwmark 0x80000/0xff0000" or "ipproto udp sport 51820".
func (t *TunnelInfo) Selector() string {
	switch {
	case t == nil:
		return ""
	case t.Mask != 0:
		return "fwmark " + config.Mark{Value: t.Mark, Mask: t.Mask}.String()
	case t.Port != 0:
		return fmt.Sprintf("ipproto udp sport %d", t.Port)
	}
	return ""
}

// SpecOf is a tunnel's spec; links observed before a tunnel's info was
// known (tests that build states by hand) get the spec their name implies.
func SpecOf(l Link) tunnel.Spec {
	if l.Tunnel != nil {
		return l.Tunnel.Spec
	}
	return tunnel.Infer(l.Name, l.Kind)
}

// Netlink is the part of the kernel's view detection needs.
type Netlink interface {
	Links() ([]Link, error)
	// Routes lists the routes of every table, both families.
	Routes() ([]Route, error)
	// Rules lists the policy rules of both families.
	Rules() ([]Rule, error)
}

// WireGuardDevice is what a WireGuard device (kernel or userspace, read
// with wgctrl) says about its own sockets.
type WireGuardDevice struct {
	FwMark     uint32
	ListenPort int
}

// TailscaleMark is the mark tailscaled puts on its own sockets (its rules
// from priority 5210 match fwmark 0x80000/0xff0000).
var TailscaleMark = config.Mark{Value: 0x80000, Mask: 0xff0000}

// Snapshot is the kernel's view at one moment.
type Snapshot struct {
	Links  []Link
	Routes []Route
	Rules  []Rule
	// OtherTables are tables holding routes that Routes leaves out: an
	// observer that keeps only what it acts on (the agent) lists them, so
	// a free table is still chosen right. Read-only: it may be shared.
	OtherTables []int
}

// Inputs are everything a State is derived from.
type Inputs struct {
	Env Environment
	Snapshot
	// WireGuard reads a device's mark and port; nil or !ok: not a WireGuard
	// device wgctrl can read.
	WireGuard func(name string) (WireGuardDevice, bool)
	// ZeroTierPayload is the physical UDP payload zerotier-one's local.conf
	// sets; 0 for its default.
	ZeroTierPayload int
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
	// Routes are the routes of every table, Rules the policy rules: the
	// tunnel scope changes a few of them and must know what else is there.
	Routes []Route `json:"routes,omitempty"`
	Rules  []Rule  `json:"rules,omitempty"`
	// OtherTables are tables with routes not in Routes (see Snapshot).
	OtherTables []int `json:"-"`
}

// Observe reads the environment, the links, routes and rules once, and what
// the tunnels say about themselves.
func Observe(src Sources, nl Netlink, cfg config.Config) (State, error) {
	snap, err := Read(nl)
	if err != nil {
		return State{}, err
	}
	env := DetectEnvironment(src, snap.Links)
	if !env.WSL && cfg.AssumeWSL {
		env = Assume(src, env, snap.Links)
	}
	return Derive(Inputs{Env: env, Snapshot: snap, WireGuard: src.WireGuard, ZeroTierPayload: ZeroTierPayload(src.Root)}, cfg)
}

// Assume turns a host not detected as WSL into an assumed WSL2 one
// (--assume-wsl), keeping the detection's note.
func Assume(src Sources, env Environment, links []Link) Environment {
	env.WSL, env.Version, env.Assumed = true, 2, true
	if env.NetworkingMode == "" {
		env.NetworkingMode, env.ModeEvidence = networkingMode(src, links)
	}
	return env
}

// State is the snapshot as a state with nothing derived but the routes'
// device names: what revert needs, which must work whatever the config says.
func (s Snapshot) State() State {
	st := State{Links: s.Links, Routes: append([]Route(nil), s.Routes...), Rules: s.Rules, OtherTables: s.OtherTables}
	names := map[int]string{}
	for _, l := range s.Links {
		names[l.Index] = l.Name
	}
	for i := range st.Routes {
		if st.Routes[i].Dev == "" {
			st.Routes[i].Dev = names[st.Routes[i].LinkIndex]
		}
	}
	return st
}

// Read takes one snapshot of links, routes and rules.
func Read(nl Netlink) (Snapshot, error) {
	links, err := nl.Links()
	if err != nil {
		return Snapshot{}, fmt.Errorf("listing interfaces: %w", err)
	}
	routes, err := nl.Routes()
	if err != nil {
		return Snapshot{}, fmt.Errorf("listing routes: %w", err)
	}
	rules, err := nl.Rules()
	if err != nil {
		return Snapshot{}, fmt.Errorf("listing policy rules: %w", err)
	}
	snap := Snapshot{Links: links, Routes: routes, Rules: rules}
	if o, ok := nl.(interface{ OtherTables() []int }); ok {
		snap.OtherTables = o.OtherTables()
	}
	return snap, nil
}

// Derive decides, from one snapshot, which link is the outer interface and
// which are tunnels, of what kind, and how their packets are recognised.
// It is pure: the agent feeds it the view it keeps from netlink events.
func Derive(in Inputs, cfg config.Config) (State, error) {
	links := append([]Link(nil), in.Links...)
	sort.Slice(links, func(i, j int) bool { return links[i].Index < links[j].Index })
	byIndex := map[int]string{}
	for _, l := range links {
		byIndex[l.Index] = l.Name
	}
	routes := append([]Route(nil), in.Routes...)
	for i := range routes {
		if routes[i].Dev == "" {
			routes[i].Dev = byIndex[routes[i].LinkIndex]
		}
	}
	st := State{Env: in.Env, Links: links, Routes: routes, Rules: in.Rules, OtherTables: in.OtherTables}

	isTunnel := func(l Link) bool { return IsTunnel(l, cfg) }
	outer, why, err := chooseOuter(links, routes, cfg, isTunnel)
	if err != nil {
		return State{}, err
	}
	st.Outer, st.OuterWhy = outer, why

	for _, l := range links {
		if !isTunnel(l) || (outer != nil && l.Index == outer.Index) {
			continue
		}
		l.Tunnel = describeTunnel(l, cfg, in)
		if l.Up {
			st.Tunnels = append(st.Tunnels, l)
		} else {
			st.DownTunnels = append(st.DownTunnels, l)
		}
	}
	for _, pattern := range cfg.Tunnels {
		if !strings.ContainsAny(pattern, "*?[") && findLink(links, pattern) == nil {
			st.MissingTunnels = append(st.MissingTunnels, pattern)
		}
	}
	return st, nil
}

// IsTunnel says whether Derive takes a link for a tunnel (unless it is
// the outer interface): a name the config's tunnel patterns select, or a
// WireGuard device of the kernel's.
func IsTunnel(l Link, cfg config.Config) bool {
	return l.Name != "lo" && (cfg.IsTunnel(l.Name) || l.Kind == "wireguard")
}

// IsWSLAdapter says whether a name is one WSL gives the adapters it makes:
// eth0 under NAT and consomme, an ethN per Windows adapter when mirrored.
// WSL makes them again on restart, and the default route may move from one
// to another.
func IsWSLAdapter(name string) bool { return strings.HasPrefix(name, "eth") }

// Relevant says whether a change to the link can change what Derive
// decides, given the index of the outer interface it chose last (0 for
// none): that interface (by index, so a rename does not lose it), the
// configured outer interface, a tunnel, or a WSL adapter, which may hold
// the default route next. Anything else (lo, docker0, a veth) cannot.
func Relevant(l Link, outerIndex int, cfg config.Config) bool {
	if l.Name == "" || l.Name == "lo" {
		return false
	}
	return l.Index == outerIndex || l.Name == cfg.OuterInterface || IsTunnel(l, cfg) || IsWSLAdapter(l.Name)
}

// chooseOuter: the configured outer interface, else the holder of the
// default route with the lowest metric (IPv4 first) that is not a tunnel —
// a default route through a tunnel (an exit node, a VPN's tun) says nothing
// about the underlay — else eth0. A tunnel pattern that selects the chosen
// interface is bad input: the outer interface is never a tunnel, and
// treating it as one made plans feed on their own output.
func chooseOuter(links []Link, routes []Route, cfg config.Config, isTunnel func(Link) bool) (*Link, string, error) {
	if cfg.OuterInterface != "" {
		l := findLink(links, cfg.OuterInterface)
		if l == nil {
			return nil, "", &NotFoundError{What: "outer interface", Name: cfg.OuterInterface, Have: linkNames(links)}
		}
		return l, "outer_interface in the config", nil
	}
	byIndex := map[int]Link{}
	for _, l := range links {
		byIndex[l.Index] = l
	}
	var chosen *Link
	why := ""
	var selected *Link // a default-route holder a tunnel pattern selects
	for _, family := range []int{4, 6} {
		best := -1
		for _, r := range routes {
			l, ok := byIndex[r.LinkIndex]
			if r.Family != family || r.Table != MainTable || !r.IsDefault() || !ok || l.Name == "lo" {
				continue
			}
			if l.Kind == "wireguard" || l.Kind == "tun" {
				continue
			}
			if isTunnel(l) {
				if selected == nil {
					selected = &l
				}
				continue
			}
			if best < 0 || r.Metric < best {
				best = r.Metric
				chosen = &l
				why = "holds the default route"
			}
		}
		if chosen != nil {
			break
		}
	}
	if chosen == nil {
		if l := findLink(links, "eth0"); l != nil {
			if isTunnel(*l) {
				return nil, "", patternError(cfg, *l, "WSL's NAT interface")
			}
			chosen, why = l, "no default route; eth0 is WSL's NAT interface"
		}
	}
	if chosen == nil && selected != nil {
		// The only default route is through an interface a pattern made a
		// tunnel, and nothing else could be the underlay: the pattern is
		// too wide.
		return nil, "", patternError(cfg, *selected, "it holds the default route")
	}
	return chosen, why, nil
}

// PatternError is a tunnel pattern that selects the outer interface: bad
// input, refused before anything changes.
type PatternError struct {
	Pattern, Interface, Why string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("tunnels: %q selects %s, the outer interface (%s): the outer interface carries the tunnels and is never one; "+
		"name the tunnels more narrowly (e.g. tunnels = [\"tailscale0\", \"wg*\"])", e.Pattern, e.Interface, e.Why)
}

func patternError(cfg config.Config, l Link, why string) error {
	return &PatternError{Pattern: cfg.Pattern(l.Name), Interface: l.Name, Why: why}
}

// describeTunnel gives a tunnel its kind and finds how its packets are
// recognised, from evidence only, in this order: what the WireGuard device
// itself says through wgctrl (its fwmark, else its listen port); for
// tailscaled's device, tailscaled's own policy rules matching its mark (the
// rules exist only where tailscaled marks its sockets); a [[tunnel]] table;
// otherwise nothing, and the plan raises the outer interface for every
// packet rather than scope it to rules that would match nothing. A name is
// never evidence: a wireguard-go device called tailscale0 carries no mark.
func describeTunnel(l Link, cfg config.Config, in Inputs) *TunnelInfo {
	t := &TunnelInfo{Spec: cfg.Spec(l.Name, l.Kind), Pattern: cfg.Pattern(l.Name)}
	if t.Pattern == "" {
		t.Pattern = "netlink kind " + l.Kind
	}
	if t.Spec.Kind == tunnel.ZeroTier && t.Spec.Payload == 0 && in.ZeroTierPayload > 0 {
		t.Spec.Payload = in.ZeroTierPayload
		t.Spec.Source = "zerotier-one's local.conf"
	}
	dev, readable := WireGuardDevice{}, false
	if in.WireGuard != nil {
		dev, readable = in.WireGuard(l.Name)
	}
	set, hasSetting := cfg.TunnelSetting(l.Name)
	tailscaled := TailscaledRules(in.Rules)
	switch {
	case readable && dev.FwMark != 0:
		t.Mark, t.Mask = dev.FwMark, 0xffffffff
		t.IdentifiedBy = fmt.Sprintf("wgctrl: the device's fwmark is 0x%x", dev.FwMark)
	case readable && dev.ListenPort != 0:
		t.Port = dev.ListenPort
		t.IdentifiedBy = fmt.Sprintf("wgctrl: the device has no fwmark and listens on udp port %d", dev.ListenPort)
	case IsTailscale(l.Name) && len(tailscaled) > 0:
		t.Mark, t.Mask = TailscaleMark.Value, TailscaleMark.Mask
		t.IdentifiedBy = "tailscaled's rules at " + prefList(tailscaled) + " use it"
	case hasSetting && set.FwMark != "":
		m, _ := config.ParseMark(set.FwMark) // validated with the config
		t.Mark, t.Mask = m.Value, m.Mask
		t.IdentifiedBy = fmt.Sprintf("[[tunnel]] name = %q sets fwmark = %q", set.Name, m)
	case hasSetting && set.Port != 0:
		t.Port = set.Port
		t.IdentifiedBy = fmt.Sprintf("[[tunnel]] name = %q sets port = %d", set.Name, set.Port)
	case readable:
		t.Unidentified = "its WireGuard device has neither a fwmark nor a listen port"
	case IsTailscale(l.Name):
		t.Unidentified = "tailscaled's rules (fwmark " + TailscaleMark.String() + ", priority 5210–5270) are not in place, " +
			"and wgctrl cannot read the device: nothing shows that its packets carry tailscaled's mark"
	default:
		t.Unidentified = "it is not a WireGuard device wslmtu can read (wgctrl)"
	}
	return t
}

// IsTailscale says whether an interface name is tailscaled's (tailscale0,
// or another --tun name starting with "tailscale").
func IsTailscale(name string) bool { return strings.HasPrefix(name, "tailscale") }

// Tailscaled's own rule priorities (wgengine/router/osrouter): 5210, 5230
// and 5250 match its mark; 5270 looks up table 52.
const (
	TailscaledFirstPref = 5210
	TailscaledLastPref  = 5270
)

// TailscaledRules are the rules that show tailscaled marks its packets:
// fwmark 0x80000/0xff0000 at tailscaled's own priorities. wslmtu's rules use
// the same mark below 5210, so they never count as evidence of themselves.
func TailscaledRules(rules []Rule) []Rule {
	var out []Rule
	for _, r := range rules {
		if r.Mark == TailscaleMark.Value && r.Mask == TailscaleMark.Mask &&
			r.Priority >= TailscaledFirstPref && r.Priority <= TailscaledLastPref {
			out = append(out, r)
		}
	}
	return out
}

// prefList is "5210–5250" or "5210" for the rules' priorities.
func prefList(rules []Rule) string {
	lo, hi := rules[0].Priority, rules[0].Priority
	for _, r := range rules {
		lo, hi = min(lo, r.Priority), max(hi, r.Priority)
	}
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// ZeroTierPayload reads the physical path MTU zerotier-one's local.conf
// sets ("physical": {"<network>": {"mtu": N}}): the largest, since the
// tunnel may use any of those paths. 0 when there is none.
func ZeroTierPayload(root fs.FS) int {
	if root == nil {
		return 0
	}
	data, err := fs.ReadFile(root, "var/lib/zerotier-one/local.conf")
	if err != nil || len(data) > 1<<20 {
		return 0
	}
	var conf struct {
		Physical map[string]struct {
			MTU int `json:"mtu"`
		} `json:"physical"`
	}
	if json.Unmarshal(data, &conf) != nil {
		return 0
	}
	payload := 0
	for _, p := range conf.Physical {
		if p.MTU >= tunnel.ZeroTierMinPayload && p.MTU <= tunnel.ZeroTierMaxPayload {
			payload = max(payload, p.MTU)
		}
	}
	return payload
}

// Link returns the observed link with that name, or nil.
func (s State) Link(name string) *Link { return findLink(s.Links, name) }

// DefaultRoutes are the main table's default routes through a link, both families.
func (s State) DefaultRoutes(linkIndex int) []Route {
	var out []Route
	for _, r := range s.Routes {
		if r.Table == MainTable && r.IsDefault() && r.LinkIndex == linkIndex {
			out = append(out, r)
		}
	}
	return out
}

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
