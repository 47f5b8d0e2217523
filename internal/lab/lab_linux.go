package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// Defaults match a WSL2 VM whose eth0 WSL lowered to Tailscale-for-Windows'
// 1280, with tailscaled's own 1280 on tailscale0: the broken setup.
const (
	DefaultEthMTU    = 1280
	DefaultTunnelMTU = 1280
)

// Names and addresses inside the lab. They repeat between labs because every
// lab has its own namespaces; only namespace names must be unique.
const (
	EthName    = "eth0"       // WSL's outer interface
	TunnelName = "tailscale0" // WSL's tunnel
	peerTun    = "wg0"
	hvWSLName  = "wsl"  // Hyper-V's side of eth0; the fragment filter keys on it
	lanName    = "lan0" // LAN link in hyperv and peer
	hvWSLMTU   = 1500   // a veth drops frames above its own MTU, so never the bottleneck here
	lanMTU     = 1500
	peerTunMTU = 1280 // what a Tailscale peer uses
	// TailscaleMark is the mark tailscaled puts on its sockets.
	TailscaleMark = 0x80000
	wslWGPort     = 41641
	peerWGPort    = 51820
	keepalive     = 5
	minIPv6MTU    = tunnel.MinIPv6MTU
)

var (
	wslEth4   = netip.MustParsePrefix("172.24.0.2/20")
	hvWSL4    = netip.MustParsePrefix("172.24.0.1/20")
	wslEth6   = netip.MustParsePrefix("fd00:5:1::2/64")
	hvWSL6    = netip.MustParsePrefix("fd00:5:1::1/64")
	hvLAN4    = netip.MustParsePrefix("192.168.50.1/24")
	peerLAN4  = netip.MustParsePrefix("192.168.50.2/24")
	hvLAN6    = netip.MustParsePrefix("fd00:5:2::1/64")
	peerLAN6  = netip.MustParsePrefix("fd00:5:2::2/64")
	wslTun4   = netip.MustParsePrefix("100.64.0.1/24")
	peerTun4  = netip.MustParsePrefix("100.64.0.2/24")
	wslTun6   = netip.MustParsePrefix("fd7a:115c:a1e0::1/64")
	peerTun6  = netip.MustParsePrefix("fd7a:115c:a1e0::2/64")
	nodeStart = 10 * time.Second
	tunnelUp  = 10 * time.Second
)

var errClosed = errors.New("lab: closed")

// Options shape a lab. Zero values take the defaults.
type Options struct {
	EthMTU    int // WSL's eth0; default DefaultEthMTU
	TunnelMTU int // WSL's tailscale0; default DefaultTunnelMTU
	// IPv6Underlay makes WireGuard talk to the peer over IPv6, so each outer
	// packet carries tunnel.WireGuardOverhead(tunnel.IPv6) bytes of overhead
	// instead of tunnel.WireGuardOverhead(tunnel.IPv4).
	IPv6Underlay bool
}

func (o Options) withDefaults() (Options, error) {
	if o.EthMTU == 0 {
		o.EthMTU = DefaultEthMTU
	}
	if o.TunnelMTU == 0 {
		o.TunnelMTU = DefaultTunnelMTU
	}
	if err := checkMTU("EthMTU", o.EthMTU); err != nil {
		return o, err
	}
	if err := checkMTU("TunnelMTU", o.TunnelMTU); err != nil {
		return o, err
	}
	if o.IPv6Underlay && o.EthMTU < minIPv6MTU {
		return o, fmt.Errorf("lab: EthMTU %d is below %d, the IPv6 minimum, but IPv6Underlay needs IPv6 on eth0", o.EthMTU, minIPv6MTU)
	}
	return o, nil
}

func checkMTU(what string, mtu int) error {
	if mtu < 576 || mtu > 65535 {
		return fmt.Errorf("lab: %s %d out of range 576..65535", what, mtu)
	}
	return nil
}

// Lab is a running model of WSL2 behind Hyper-V's NAT with a tunnel to a peer.
// Its methods are safe for concurrent use, except that checks running while
// the tunnel or eth0 is being recreated will of course fail.
//
// One way the model is stricter than Hyper-V: eth0 is a veth, and a veth
// refuses to receive frames larger than its own MTU, whereas a real Hyper-V
// NIC accepts them. So peer→WSL packets bigger than eth0's MTU are lost here
// (e.g. the peer's reply to a large non-DF ping); checks only rely on the
// WSL→peer direction carrying large packets.
type Lab struct {
	opts    Options
	prefix  string
	wsl     *space
	hv      *space
	peer    *space
	wslKey  wgKey
	peerKey wgKey

	// spawner is a goroutine locked to its own thread that forks the nodes:
	// Pdeathsig fires when the forking *thread* exits (golang/go#27505), and
	// only a thread that nothing else runs on is sure to live as long as the lab.
	spawner chan func()

	mu       sync.Mutex // guards the nodes, the links they sit on and closed
	closed   bool
	wslNode  *node
	peerNode *node

	closeOnce sync.Once
	closeErr  error
}

// space is one named network namespace with an fd and a netlink handle in it.
type space struct {
	name string
	ns   netns.NsHandle
	nl   *netlink.Handle
}

// New builds a lab in fresh network namespaces named
// wslmtu-<pid>-<random>-{wsl,hyperv,peer}.
// It returns once a small packet has crossed the tunnel. The caller must Close
// it; for a command, CloseOnSignal also closes it on SIGINT/SIGTERM.
func New(opts Options) (l *Lab, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: needs root to create network namespaces")
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	// The owner's PID in the name lets RemoveStale tell leftovers of a
	// crashed run from namespaces of a lab still running elsewhere.
	prefix := fmt.Sprintf("wslmtu-%d-%s-", os.Getpid(), hex.EncodeToString(rnd[:]))
	l = &Lab{opts: opts, prefix: prefix, spawner: make(chan func())}
	go func() {
		runtime.LockOSThread()
		// Never unlocked: when Close ends the loop, the thread exits with it.
		for f := range l.spawner {
			f()
		}
	}()
	defer func() {
		if err != nil {
			_ = l.Close()
			l = nil
		}
	}()
	if l.wslKey, err = newWGKey(); err != nil {
		return l, err
	}
	if l.peerKey, err = newWGKey(); err != nil {
		return l, err
	}
	for _, s := range []struct {
		dst  **space
		role string
	}{{&l.wsl, "wsl"}, {&l.hv, "hyperv"}, {&l.peer, "peer"}} {
		if *s.dst, err = newSpace(l.prefix + s.role); err != nil {
			return l, err
		}
	}
	if err = l.setupSysctls(); err != nil {
		return l, err
	}
	if err = l.setupLinks(); err != nil {
		return l, err
	}
	if err = l.startNodes(); err != nil {
		return l, err
	}
	if err = l.waitTunnel(); err != nil {
		return l, err
	}
	return l, nil
}

func newSpace(name string) (*space, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("lab: ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	s := &space{name: name, ns: netns.None()}
	var err error
	if s.ns, err = netns.GetFromName(name); err != nil {
		s.close()
		return nil, fmt.Errorf("lab: open netns %s: %w", name, err)
	}
	if s.nl, err = netlink.NewHandleAt(s.ns); err != nil {
		s.close()
		return nil, fmt.Errorf("lab: netlink in %s: %w", name, err)
	}
	return s, nil
}

// close drops our references and deletes the namespace; the kernel then
// destroys its links (and with them the veth ends elsewhere).
func (s *space) close() error {
	if s == nil {
		return nil
	}
	if s.nl != nil {
		s.nl.Close()
	}
	if s.ns.IsOpen() {
		_ = s.ns.Close()
	}
	if out, err := exec.Command("ip", "netns", "del", s.name).CombinedOutput(); err != nil {
		return fmt.Errorf("lab: ip netns del %s: %v: %s", s.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// do runs fn on an OS thread switched into the namespace. Sockets fn creates
// stay in that namespace and may be used from anywhere afterwards; goroutines
// fn starts do not inherit the namespace.
func (s *space) do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab: current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(s.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab: enter netns %s: %w", s.name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Stay locked: the runtime then kills this thread with the goroutine
		// instead of reusing a thread stuck in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("lab: leave netns %s: %w", s.name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func (s *space) sysctl(key, value string) error {
	return s.do(func() error {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("lab: sysctl %s=%s in %s: %w", key, value, s.name, err)
		}
		return nil
	})
}

func (l *Lab) setupSysctls() error {
	for _, s := range []*space{l.wsl, l.hv, l.peer} {
		// Duplicate address detection would hold IPv6 addresses back ~1 s.
		for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
			if err := s.sysctl(k, "0"); err != nil {
				return err
			}
		}
		lo, err := s.nl.LinkByName("lo")
		if err == nil {
			err = s.nl.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("lab: lo up in %s: %w", s.name, err)
		}
	}
	if err := l.hv.sysctl("net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	return l.hv.sysctl("net.ipv6.conf.all.forwarding", "1")
}

func (l *Lab) setupLinks() error {
	if err := l.createEth(l.opts.EthMTU); err != nil {
		return err
	}
	// The LAN veth is made from inside hyperv with its peer end born in the
	// peer namespace, so no name ever appears in the root namespace.
	lan := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: lanName, MTU: lanMTU},
		PeerName:      lanName,
		PeerNamespace: netlink.NsFd(l.peer.ns),
	}
	if err := l.hv.nl.LinkAdd(lan); err != nil {
		return fmt.Errorf("lab: create %s veth: %w", lanName, err)
	}
	if err := linkUpWithAddrs(l.hv, lanName, hvLAN4, hvLAN6); err != nil {
		return err
	}
	return linkUpWithAddrs(l.peer, lanName, peerLAN4, peerLAN6)
}

// createEth makes WSL's eth0 with its Hyper-V end, addresses and default route.
func (l *Lab) createEth(mtu int) error {
	eth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: EthName, MTU: mtu},
		PeerName:      hvWSLName,
		PeerMTU:       hvWSLMTU,
		PeerNamespace: netlink.NsFd(l.hv.ns),
	}
	if err := l.wsl.nl.LinkAdd(eth); err != nil {
		return fmt.Errorf("lab: create %s veth in %s: %w", EthName, l.wsl.name, err)
	}
	wslAddrs := []netip.Prefix{wslEth4}
	hvAddrs := []netip.Prefix{hvWSL4}
	if l.opts.IPv6Underlay {
		wslAddrs = append(wslAddrs, wslEth6)
		hvAddrs = append(hvAddrs, hvWSL6)
	}
	if err := linkUpWithAddrs(l.hv, hvWSLName, hvAddrs...); err != nil {
		return err
	}
	if err := linkUpWithAddrs(l.wsl, EthName, wslAddrs...); err != nil {
		return err
	}
	link, err := l.wsl.nl.LinkByName(EthName)
	if err != nil {
		return fmt.Errorf("lab: %s in %s: %w", EthName, l.wsl.name, err)
	}
	gws := []netip.Prefix{hvWSL4}
	if l.opts.IPv6Underlay {
		gws = append(gws, hvWSL6)
	}
	for _, gw := range gws {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.Addr().AsSlice()}
		if err := l.wsl.nl.RouteAdd(r); err != nil {
			return fmt.Errorf("lab: default route via %s in %s: %w", gw.Addr(), l.wsl.name, err)
		}
	}
	return nil
}

func linkUpWithAddrs(s *space, name string, addrs ...netip.Prefix) error {
	link, err := s.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("lab: %s in %s: %w", name, s.name, err)
	}
	for _, a := range addrs {
		na := &netlink.Addr{IPNet: prefixToIPNet(a), Flags: unix.IFA_F_NODAD}
		if err := s.nl.AddrAdd(link, na); err != nil {
			return fmt.Errorf("lab: add %s to %s in %s: %w", a, name, s.name, err)
		}
	}
	if err := s.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("lab: set %s up in %s: %w", name, s.name, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// firewallRules is Hyper-V's behaviour: NAT for the VM, and fragments from
// the VM dropped before the defragmenter (priority -400) can reassemble them.
func firewallRules() string {
	return fmt.Sprintf(`table inet wslmtu {
	chain fragments {
		type filter hook prerouting priority -450; policy accept;
		iifname %[1]q ip frag-off & 0x3fff != 0 counter drop
		iifname %[1]q exthdr frag exists counter drop
	}
}
table ip wslmtu_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname %[2]q ip saddr %[3]s masquerade
	}
}
table ip6 wslmtu_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname %[2]q ip6 saddr %[4]s masquerade
	}
}
`, hvWSLName, lanName, wslEth4.Masked(), wslEth6.Masked())
}

func (l *Lab) setupFirewall() error {
	cmd := exec.Command("ip", "netns", "exec", l.hv.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(firewallRules())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab: nft ruleset in %s: %v: %s", l.hv.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (l *Lab) wslNodeConfig() nodeConfig {
	ep := netip.AddrPortFrom(peerLAN4.Addr(), peerWGPort)
	if l.opts.IPv6Underlay {
		ep = netip.AddrPortFrom(peerLAN6.Addr(), peerWGPort)
	}
	// WSL is behind NAT, so it must initiate and keep the mapping alive.
	// Its sockets carry tailscaled's mark, as the real tailscale0's do, so
	// wslmtu's tunnel scope recognises its packets without configuration.
	return nodeConfig{
		fwmark:     TailscaleMark,
		privateKey: l.wslKey.private,
		listenPort: wslWGPort,
		peerPublic: l.peerKey.public,
		endpoint:   ep.String(),
		keepalive:  keepalive,
		allowedIPs: []string{peerTun4.Masked().String(), peerTun6.Masked().String()},
	}
}

func (l *Lab) peerNodeConfig() nodeConfig {
	return nodeConfig{
		privateKey: l.peerKey.private,
		listenPort: peerWGPort,
		peerPublic: l.wslKey.public,
		allowedIPs: []string{netip.PrefixFrom(wslTun4.Addr(), 32).String(), netip.PrefixFrom(wslTun6.Addr(), 128).String()},
	}
}

// startNodes starts the peer, and installs Hyper-V's rules meanwhile, before
// WSL: WSL's node sends its first handshake as soon as it is up, and if that
// is lost (no NAT yet, nobody listening yet) wireguard-go only retries after
// REKEY_TIMEOUT (5 s).
func (l *Lab) startNodes() error {
	fw := make(chan error, 1)
	go func() { fw <- l.setupFirewall() }()
	var err error
	l.peerNode, err = l.startTunnel(l.peer, peerTun, peerTunMTU, l.peerNodeConfig(), peerTun4, peerTun6)
	if err = errors.Join(err, <-fw); err != nil {
		return err
	}
	l.wslNode, err = l.startTunnel(l.wsl, TunnelName, l.opts.TunnelMTU, l.wslNodeConfig(), wslTun4, wslTun6)
	return err
}

// startTunnel runs a node and gives its tun addresses, as tailscaled does
// after creating tailscale0. Below 1280 the kernel refuses IPv6 on the link,
// so the IPv6 address is left out, as it would be lost in real life.
func (l *Lab) startTunnel(s *space, name string, mtu int, cfg nodeConfig, a4, a6 netip.Prefix) (*node, error) {
	var n *node
	var err error
	l.spawn(func() { n, err = startNode(s.name, name, mtu, cfg, nodeStart) })
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	addrs := []netip.Prefix{a4}
	if mtu >= minIPv6MTU {
		addrs = append(addrs, a6)
	}
	if err := linkUpWithAddrs(s, name, addrs...); err != nil {
		n.kill()
		return nil, err
	}
	return n, nil
}

// waitTunnel returns once a small ping crosses the tunnel, which also means
// the handshake is done and hyperv's NAT has learnt the mapping.
func (l *Lab) waitTunnel() error {
	deadline := time.Now().Add(tunnelUp)
	var last Result
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		last = l.ping(ctx, 56, false, false)
		cancel()
		if last.OK {
			return nil
		}
	}
	return fmt.Errorf("lab: tunnel %s→%s not up after %v: %s; node stderr: %s",
		l.wsl.name, l.peer.name, tunnelUp, last, l.nodeStderr())
}

func (l *Lab) nodeStderr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, n := range []*node{l.wslNode, l.peerNode} {
		if n != nil {
			if s := strings.TrimSpace(n.stderr.String()); s != "" {
				parts = append(parts, s)
			}
		}
	}
	return strings.Join(parts, " | ")
}

// spawn runs f on the spawner thread and waits for it.
func (l *Lab) spawn(f func()) {
	done := make(chan struct{})
	l.spawner <- func() {
		defer close(done)
		f()
	}
	<-done
}

// Close kills the WireGuard nodes and deletes the namespaces, which removes
// every link of the lab. It is safe to call more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		nodes := []*node{l.wslNode, l.peerNode}
		for _, n := range nodes {
			if n != nil {
				_ = n.cmd.Process.Kill()
			}
		}
		for _, n := range nodes {
			if n != nil {
				n.kill()
			}
		}
		close(l.spawner)
		l.mu.Unlock()
		spaces := []*space{l.wsl, l.hv, l.peer}
		errs := make([]error, len(spaces))
		var wg sync.WaitGroup
		for i, s := range spaces {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.close()
			}()
		}
		wg.Wait()
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// CloseOnSignal closes the lab and exits (status 128+signal) on SIGINT or
// SIGTERM, for commands whose user may press ^C. Call stop to disarm it.
func (l *Lab) CloseOnSignal() (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			_ = l.Close()
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			os.Exit(code)
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
		})
	}
}

// WSLNetNS is the name of the WSL namespace (for `ip netns exec`).
func (l *Lab) WSLNetNS() string { return l.wsl.name }

// Namespaces lists the lab's namespace names.
func (l *Lab) Namespaces() []string { return []string{l.wsl.name, l.hv.name, l.peer.name} }

// WSLNetlink is a netlink handle on the WSL namespace, owned by the lab and
// valid until Close: what fix.HostAt and the agent need to act on "WSL".
func (l *Lab) WSLNetlink() *netlink.Handle { return l.wsl.nl }

// WSLNetNSHandle is the WSL namespace, for netlink subscriptions; valid until Close.
func (l *Lab) WSLNetNSHandle() netns.NsHandle { return l.wsl.ns }

// DoWSL runs fn on a thread inside the WSL namespace, so that netlink handles,
// sockets and iptables calls fn makes act on the lab's "WSL". Goroutines fn
// starts run outside it.
func (l *Lab) DoWSL(fn func() error) error { return l.wsl.do(fn) }

// NodePIDs are the process IDs of the WireGuard nodes (WSL's first).
func (l *Lab) NodePIDs() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pids []int
	for _, n := range []*node{l.wslNode, l.peerNode} {
		if n != nil {
			pids = append(pids, n.pid())
		}
	}
	return pids
}

// PeerTunnelIP is the peer's address inside the tunnel.
func (l *Lab) PeerTunnelIP(v6 bool) netip.Addr {
	if v6 {
		return peerTun6.Addr()
	}
	return peerTun4.Addr()
}

// WSLTunnelIP is WSL's address inside the tunnel.
func (l *Lab) WSLTunnelIP(v6 bool) netip.Addr {
	if v6 {
		return wslTun6.Addr()
	}
	return wslTun4.Addr()
}

func (l *Lab) linkMTU(name string) (int, error) {
	link, err := l.wsl.nl.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("lab: %s in %s: %w", name, l.wsl.name, err)
	}
	return link.Attrs().MTU, nil
}

func (l *Lab) setLinkMTU(name string, mtu int) error {
	if err := checkMTU(name+" MTU", mtu); err != nil {
		return err
	}
	link, err := l.wsl.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("lab: %s in %s: %w", name, l.wsl.name, err)
	}
	if err := l.wsl.nl.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("lab: set %s MTU %d in %s: %w", name, mtu, l.wsl.name, err)
	}
	return nil
}

// EthMTU is eth0's current MTU as the kernel reports it, or 0 if eth0 is
// missing (e.g. during RecreateEth).
func (l *Lab) EthMTU() int {
	mtu, _ := l.linkMTU(EthName)
	return mtu
}

// TunnelMTU is tailscale0's current MTU, or 0 if it is missing.
func (l *Lab) TunnelMTU() int {
	mtu, _ := l.linkMTU(TunnelName)
	return mtu
}

// SetEthMTU sets eth0's MTU, as WSL does when Windows connectivity changes.
func (l *Lab) SetEthMTU(mtu int) error { return l.setLinkMTU(EthName, mtu) }

// SetTunnelMTU sets tailscale0's MTU in place; wireguard-go follows it.
func (l *Lab) SetTunnelMTU(mtu int) error { return l.setLinkMTU(TunnelName, mtu) }

// RestartTunnel kills WSL's WireGuard node and starts a new one whose
// tailscale0 comes back at mtu with its addresses, as tailscaled does on every
// reconnect. It returns once traffic crosses the tunnel again.
func (l *Lab) RestartTunnel(mtu int) error {
	if err := checkMTU("tunnel MTU", mtu); err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	if l.wslNode != nil {
		l.wslNode.kill()
		l.wslNode = nil
	}
	n, err := l.startTunnel(l.wsl, TunnelName, mtu, l.wslNodeConfig(), wslTun4, wslTun6)
	l.wslNode = n
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.waitTunnel()
}

// RecreateEth deletes eth0 and makes it again at mtu with its address and
// default route, as a WSL restart does. It returns once traffic crosses the
// tunnel again.
func (l *Lab) RecreateEth(mtu int) error {
	if err := checkMTU("eth0 MTU", mtu); err != nil {
		return err
	}
	if l.opts.IPv6Underlay && mtu < minIPv6MTU {
		return fmt.Errorf("lab: eth0 MTU %d is below %d, which the IPv6 underlay needs", mtu, minIPv6MTU)
	}
	l.mu.Lock()
	err := func() error {
		if l.closed {
			return errClosed
		}
		link, err := l.wsl.nl.LinkByName(EthName)
		if err != nil {
			return fmt.Errorf("lab: %s in %s: %w", EthName, l.wsl.name, err)
		}
		if err := l.wsl.nl.LinkDel(link); err != nil {
			return fmt.Errorf("lab: delete %s in %s: %w", EthName, l.wsl.name, err)
		}
		return l.createEth(mtu)
	}()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.waitTunnel()
}

var staleName = regexp.MustCompile(`^wslmtu-([0-9]+)-[0-9a-f]{8}-(wsl|hyperv|peer)$`)

// RemoveStale deletes lab namespaces left behind by processes that died
// without Close (their WireGuard nodes die with them, the namespaces do not),
// and returns their names. Namespaces of live processes are left alone.
func RemoveStale() ([]string, error) {
	entries, err := os.ReadDir("/var/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: list namespaces: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		m := staleName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		if err := (&space{name: e.Name(), ns: netns.None()}).close(); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}
