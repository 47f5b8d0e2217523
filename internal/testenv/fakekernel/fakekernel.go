package fakekernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/netwatch"
	"github.com/wslmtu/wslmtu/internal/testenv/wsldistro"
)

// Kernel is the fake. The zero value is not usable; call New.
type Kernel struct {
	mu     sync.Mutex
	links  map[int]detect.Link
	routes []detect.Route
	rules  []detect.Rule
	subs   []*sub
	writes []string
	// failSubscribe makes the next n Subscribe calls fail.
	failSubscribe int
	subscribes    int
	// wg are the WireGuard devices' marks and ports (wgctrl).
	wg map[string]detect.WireGuardDevice
	// readErr makes Links/Routes/Rules fail while set.
	readErr error
	// lastIndex is the last index given out: like the kernel's, indexes are
	// never reused, so a recreated link is a new link.
	lastIndex int
	// addrs are each link's addresses, by index (wsl.go).
	addrs map[int][]addr
	// boot counts VMRestart calls: the boot id's serial.
	boot int
	// held are events kept back while HoldEvents is in force.
	held    []netwatch.Event
	holding bool
}

// The fake stands in for what detect reads and the agent subscribes to; the
// fix.Kernel check is in fix's tests, since fix's tests import this package.
var (
	_ detect.Netlink  = (*Kernel)(nil)
	_ netwatch.Source = (*Kernel)(nil)
)

type sub struct {
	ch   chan netwatch.Event
	done <-chan struct{}
}

// New is an empty kernel with lo.
func New() *Kernel {
	k := &Kernel{links: map[int]detect.Link{}, wg: map[string]detect.WireGuardDevice{}, addrs: map[int][]addr{}}
	k.links[1] = detect.Link{Name: "lo", Index: 1, MTU: 65536, Kind: "device", Up: true}
	return k
}

// NewWSL is a kernel shaped like a WSL2 distro under NAT: eth0 (index 2)
// with 172.28.0.2/20 and the default route via 172.28.0.1, and tailscale0
// (index 3, a tun), at the given MTUs, with tailscaled's policy rules and
// table 52 in place (AddTailscaledRules); NewWSLUnmarked has none.
func NewWSL(ethMTU, tunnelMTU int) *Kernel {
	k := NewWSLUnmarked(ethMTU, tunnelMTU)
	k.AddTailscaledRules()
	return k
}

// TailscaledRules are the policy rules tailscaled installs for one family
// once it runs (wgengine/router/osrouter): its mark at 5210, 5230 and 5250,
// its table 52 at 5270. They are the evidence that tailscale0's packets
// carry the mark.
func TailscaledRules(family int) []detect.Rule {
	m := detect.TailscaleMark
	return []detect.Rule{
		{Family: family, Priority: 5210, Mark: m.Value, Mask: m.Mask, Table: detect.MainTable, SuppressPrefixlen: -1},
		{Family: family, Priority: 5230, Mark: m.Value, Mask: m.Mask, Table: 253, SuppressPrefixlen: -1},
		{Family: family, Priority: 5250, Mark: m.Value, Mask: m.Mask, SuppressPrefixlen: -1, Other: true},
		{Family: family, Priority: 5270, Table: 52, SuppressPrefixlen: -1},
	}
}

// NewWSLUnmarked is NewWSL without tailscaled's rules: a tailscale0 that is
// a plain tun (or wireguard-go without a mark), whose packets nothing
// identifies.
func NewWSLUnmarked(ethMTU, tunnelMTU int) *Kernel {
	k := New()
	k.links[2] = detect.Link{Name: "eth0", Index: 2, MTU: ethMTU, Kind: "device", Up: true}
	k.links[3] = detect.Link{Name: "tailscale0", Index: 3, MTU: tunnelMTU, Kind: "tun", Up: true, IPv6Addrs: 1}
	k.routes = append(k.routes,
		detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2},
		detect.Route{Family: 4, Table: detect.MainTable, Dst: "172.28.0.0/20", LinkIndex: 2},
	)
	k.addrs[2] = []addr{{prefix: netip.MustParsePrefix("172.28.0.2/20")}}
	return k
}

// --- what detect reads ---

func (k *Kernel) Links() ([]detect.Link, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.readErr != nil {
		return nil, k.readErr
	}
	out := make([]detect.Link, 0, len(k.links))
	for _, l := range k.links {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

func (k *Kernel) Routes() ([]detect.Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.readErr != nil {
		return nil, k.readErr
	}
	return slices.Clone(k.routes), nil
}

func (k *Kernel) Rules() ([]detect.Rule, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.readErr != nil {
		return nil, k.readErr
	}
	return slices.Clone(k.rules), nil
}

// WireGuard answers as wgctrl would for the devices given with SetWireGuard.
func (k *Kernel) WireGuard(name string) (detect.WireGuardDevice, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	d, ok := k.wg[name]
	return d, ok
}

// Sources is a WSL2 distro on this kernel as detect reads it: the distro's
// files (wsldistro.Root), wslinfo printing mode (empty: no wslinfo, as
// before WSL 2.0) and this kernel's WireGuard devices.
func (k *Kernel) Sources(mode string) detect.Sources {
	src := detect.Sources{
		Root:      wsldistro.Root(),
		Getenv:    func(string) string { return "" },
		WireGuard: k.WireGuard,
	}
	if mode != "" {
		src.Run = wsldistro.Wslinfo(mode)
	}
	return src
}

// --- what fix writes (recorded) ---

// SetMTU is the code under test writing an MTU.
func (k *Kernel) SetMTU(l detect.Link, mtu int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := l.Index
	if _, ok := k.links[idx]; !ok || idx == 0 {
		idx = k.indexOf(l.Name)
	}
	cur, ok := k.links[idx]
	if !ok {
		return fmt.Errorf("interface %q not found", l.Name)
	}
	if mtu < 68 || mtu > 65535 {
		return fmt.Errorf("%s: mtu %d: invalid argument", l.Name, mtu)
	}
	k.writes = append(k.writes, fmt.Sprintf("%s mtu %d", cur.Name, mtu))
	k.setMTULocked(idx, mtu)
	return nil
}

// SetRouteMTU is the code under test giving a route an MTU (0: none).
func (k *Kernel) SetRouteMTU(r detect.Route, mtu int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, have := range k.routes {
		if have.Same(r) {
			k.writes = append(k.writes, fmt.Sprintf("route %s mtu %d", k.named(have), mtu))
			k.routes[i].MTU = mtu
			k.emitRoute(k.routes[i], false)
			return nil
		}
	}
	return fmt.Errorf("route %s: %w", r, syscall.ESRCH)
}

// AddRoute is `ip route add` (NLM_F_CREATE|NLM_F_EXCL): like the kernel,
// it refuses a route whose table already has one to the same destination
// with the same metric, whatever its gateway or device (IPv4's fib alias
// key is prefix, tos and priority; IPv6 refuses EXCL at the same metric).
func (k *Kernel) AddRoute(r detect.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, have := range k.routes {
		if sameKey(have, r) {
			return fmt.Errorf("route %s: %w", r, syscall.EEXIST)
		}
	}
	k.writes = append(k.writes, "route add "+k.named(r))
	k.routes = append(k.routes, r)
	k.emitRoute(r, false)
	return nil
}

func (k *Kernel) DeleteRoute(r detect.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, have := range k.routes {
		if have.Same(r) {
			k.writes = append(k.writes, "route del "+k.named(have))
			k.routes = slices.Delete(k.routes, i, i+1)
			k.emitRoute(have, true)
			return nil
		}
	}
	return fmt.Errorf("route %s: %w", r, syscall.ESRCH)
}

func (k *Kernel) AddRule(r detect.Rule) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, have := range k.rules {
		if have == r {
			return fmt.Errorf("rule %s: file exists", r)
		}
	}
	k.writes = append(k.writes, fmt.Sprintf("%s rule add %s", detect.Tool(r.Family), r))
	k.rules = append(k.rules, r)
	k.emitRules()
	return nil
}

func (k *Kernel) DeleteRule(r detect.Rule) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, have := range k.rules {
		if have == r {
			k.writes = append(k.writes, fmt.Sprintf("%s rule del %s", detect.Tool(r.Family), r))
			k.rules = slices.Delete(k.rules, i, i+1)
			k.emitRules()
			return nil
		}
	}
	return fmt.Errorf("rule %s: no such file or directory", r)
}

// Writes returns the changes the code under test made, in order, and
// forgets them.
func (k *Kernel) Writes() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	w := k.writes
	k.writes = nil
	return w
}

// --- what the test does as "somebody else" (WSL, tailscaled, a user) ---

// Reset sets an interface's MTU as WSL or another tool would; not recorded.
func (k *Kernel) Reset(name string, mtu int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := k.indexOf(name)
	if _, ok := k.links[idx]; !ok {
		panic("fakekernel: no interface " + name)
	}
	k.setMTULocked(idx, mtu)
}

// AppendRoute adds a route after any with the same kernel key, as
// `ip route append` does (somebody else's change: not recorded as a write).
func (k *Kernel) AppendRoute(r detect.Route) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.routes = append(k.routes, r)
	k.emitRoute(r, false)
}

// AddLink creates an interface (a new index when Index is 0).
func (k *Kernel) AddLink(l detect.Link) detect.Link {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.Index == 0 {
		for _, have := range k.links {
			k.lastIndex = max(k.lastIndex, have.Index)
		}
		k.lastIndex++
		l.Index = k.lastIndex
	}
	k.links[l.Index] = l
	k.emitLink(l, false)
	return l
}

// DeleteLink removes an interface and its routes, as the kernel does.
func (k *Kernel) DeleteLink(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := k.indexOf(name)
	l, ok := k.links[idx]
	if !ok {
		return
	}
	delete(k.links, idx)
	delete(k.addrs, idx)
	k.lastIndex = max(k.lastIndex, idx)
	k.routes = slices.DeleteFunc(k.routes, func(r detect.Route) bool { return r.LinkIndex == idx })
	k.emitLink(l, true)
}

// Rename renames an interface in place (the index stays).
func (k *Kernel) Rename(from, to string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := k.indexOf(from)
	l := k.links[idx]
	l.Name = to
	k.links[idx] = l
	k.emitLink(l, false)
}

// ReplaceRoute puts a route in place of the same one (or adds it), as WSL
// does when it rewrites the default route on a Windows network change.
func (k *Kernel) ReplaceRoute(r detect.Route) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, have := range k.routes {
		if have.Same(r) {
			k.routes[i] = r
			k.emitRoute(r, false)
			return
		}
	}
	k.routes = append(k.routes, r)
	k.emitRoute(r, false)
}

// SetWireGuard makes a link answer wgctrl with a mark and a port.
func (k *Kernel) SetWireGuard(name string, d detect.WireGuardDevice) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.wg[name] = d
}

// MTU is an interface's MTU now (0 when it does not exist).
func (k *Kernel) MTU(name string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.links[k.indexOf(name)].MTU
}

// Route returns the route that is the same as r, and whether there is one.
func (k *Kernel) Route(r detect.Route) (detect.Route, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, have := range k.routes {
		if have.Same(r) {
			return have, true
		}
	}
	return detect.Route{}, false
}

// FailReads makes Links, Routes and Rules fail with err (nil: succeed).
func (k *Kernel) FailReads(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.readErr = err
}

// --- the netwatch.Source ---

// ErrOverflow is what a failed subscription reports, like ENOBUFS.
var ErrOverflow = errors.New("netlink: no buffer space available (fake)")

// Subscribe delivers every change made after it, until ctx is done or
// Overflow is called.
func (k *Kernel) Subscribe(ctx context.Context) (<-chan netwatch.Event, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.subscribes++
	if k.failSubscribe > 0 {
		k.failSubscribe--
		return nil, errors.New("subscribing: operation not permitted (fake)")
	}
	s := &sub{ch: make(chan netwatch.Event, 4096), done: ctx.Done()}
	k.subs = append(k.subs, s)
	go func() {
		<-ctx.Done()
		k.mu.Lock()
		defer k.mu.Unlock()
		if i := slices.Index(k.subs, s); i >= 0 {
			k.subs = slices.Delete(k.subs, i, i+1)
			close(s.ch)
		}
	}()
	return s.ch, nil
}

// Overflow ends every subscription with an error, as ENOBUFS does.
func (k *Kernel) Overflow() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, s := range k.subs {
		s.ch <- netwatch.Event{At: time.Now(), Err: ErrOverflow}
		close(s.ch)
	}
	k.subs = nil
}

// FailSubscribe makes the next n Subscribe calls fail.
func (k *Kernel) FailSubscribe(n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failSubscribe = n
}

// Subscribes counts the Subscribe calls so far.
func (k *Kernel) Subscribes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.subscribes
}

func (k *Kernel) emitLink(l detect.Link, gone bool) {
	k.emit(netwatch.Event{At: time.Now(), Link: &l, Gone: gone})
}

func (k *Kernel) emitRoute(r detect.Route, gone bool) {
	k.emit(netwatch.Event{At: time.Now(), Route: &r, Gone: gone})
}

func (k *Kernel) emitRules() { k.emit(netwatch.Event{At: time.Now(), Rules: true}) }

// HoldEvents keeps events from the subscribers, stamped when they happen,
// until release delivers them in order: an agent that is busy elsewhere
// (or a slow socket) reads them late, all at once.
func (k *Kernel) HoldEvents() (release func()) {
	k.mu.Lock()
	k.holding = true
	k.mu.Unlock()
	return func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.holding = false
		held := k.held
		k.held = nil
		for _, ev := range held {
			k.emit(ev)
		}
	}
}

// emit delivers to every subscriber; a full channel is an overflow, as a
// full netlink socket buffer is.
func (k *Kernel) emit(ev netwatch.Event) {
	if k.holding {
		k.held = append(k.held, ev)
		return
	}
	kept := k.subs[:0]
	for _, s := range k.subs {
		select {
		case s.ch <- ev:
			kept = append(kept, s)
		default:
			select {
			case s.ch <- netwatch.Event{At: time.Now(), Err: ErrOverflow}:
			default:
				// Even the error does not fit: drop the oldest to make room.
				<-s.ch
				s.ch <- netwatch.Event{At: time.Now(), Err: ErrOverflow}
			}
			close(s.ch)
		}
	}
	k.subs = kept
}

func (k *Kernel) indexOf(name string) int {
	for idx, l := range k.links {
		if l.Name == name {
			return idx
		}
	}
	return 0
}

func (k *Kernel) named(r detect.Route) string {
	if l, ok := k.links[r.LinkIndex]; ok {
		r.Dev = l.Name
	}
	return r.String()
}
