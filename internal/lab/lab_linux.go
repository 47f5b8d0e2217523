package lab

import (
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/ns"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// Defaults match a WSL2 VM whose eth0 WSL lowered to Tailscale-for-Windows'
// 1280, with tailscaled's own 1280 on tailscale0: the broken setup.
const (
	DefaultEthMTU    = 1280
	DefaultTunnelMTU = 1280
	// DefaultVPNMTU is the Windows VPN adapter's MTU in the corporate-VPN
	// model: the smallest Windows adapter, hence what WSL gives eth0.
	DefaultVPNMTU = 1280
)

// Names and addresses inside the lab. They repeat between labs because every
// lab has its own namespaces; only namespace names (and the port tunnel's
// name, whose UAPI socket lives in the shared /var/run/wireguard) must be
// unique. A wireguard-go tailscale0 answers on a socket of its own lab
// (privateDir), which Sources reads: in the shared directory it would
// answer wgctrl for every other test's tailscale0.
const (
	EthName    = "eth0"       // WSL's outer interface
	TunnelName = "tailscale0" // WSL's tunnel
	peerTun    = "wg0"
	peerPTun   = "wg1"  // the peer's end of the port tunnel
	hvWSLName  = "wsl"  // Hyper-V's side of eth0; the fragment filter keys on it
	lanName    = "lan0" // LAN link in hyperv and peer
	vpnName    = "vpn0" // hyperv's side of the corporate link: the Windows VPN adapter
	corpName   = "corp0"
	hvWSLMTU   = 1500 // a veth drops frames above its own MTU, so never the bottleneck under NAT
	lanMTU     = 1500
	// corpMTU is the corporate server's own link: at 1500 it advertises an
	// MSS of 1460, so only the VPN adapter in the middle is small. (On a
	// 1280 link its MSS of 1240 would hide the problem.)
	corpMTU    = 1500
	peerTunMTU = 1280 // what a Tailscale peer uses
	// TailscaleMark is the mark tailscaled puts on its sockets.
	TailscaleMark = 0x80000
	wslWGPort     = 41641
	peerWGPort    = 51820
	// PortTunnelPort is the port tunnel's first listen port.
	PortTunnelPort = 41642
	peerPTunPort   = 51821
	keepalive      = 5
	minIPv6MTU     = tunnel.MinIPv6MTU
	// portTunnelPrefix starts the port tunnel's name; RemoveStale knows
	// UAPI sockets by it.
	portTunnelPrefix = "wglab"
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
	hvVPN4    = netip.MustParsePrefix("10.8.0.1/24")
	corpLAN4  = netip.MustParsePrefix("10.8.0.2/24")
	hvVPN6    = netip.MustParsePrefix("fd00:5:3::1/64")
	corpLAN6  = netip.MustParsePrefix("fd00:5:3::2/64")
	wslTun4   = netip.MustParsePrefix("100.64.0.1/24")
	peerTun4  = netip.MustParsePrefix("100.64.0.2/24")
	wslTun6   = netip.MustParsePrefix("fd7a:115c:a1e0::1/64")
	peerTun6  = netip.MustParsePrefix("fd7a:115c:a1e0::2/64")
	wslPTun4  = netip.MustParsePrefix("100.65.0.1/24")
	peerPTun4 = netip.MustParsePrefix("100.65.0.2/24")
	wslPTun6  = netip.MustParsePrefix("fd7a:115c:a1e1::1/64")
	peerPTun6 = netip.MustParsePrefix("fd7a:115c:a1e1::2/64")
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
	// CorporateVPN adds a "corp" namespace behind Hyper-V with a TCP server
	// reached through a Windows VPN adapter: hyperv's side of that link is
	// at DefaultVPNMTU, the server's at 1500, and hyperv never tells WSL
	// that a packet was too big (no ICMP fragmentation-needed or
	// packet-too-big), as Windows is reported to behave. WSL's ordinary
	// traffic to it breaks once eth0 is raised above the VPN's MTU.
	CorporateVPN bool
	// PortTunnel adds a second WSL tunnel, a wireguard-go device with a
	// UAPI socket and no fwmark, so the only way to tell its packets apart
	// is its listen port read through wgctrl. Its peer is a second node in
	// the peer namespace.
	PortTunnel bool
	// Mirrored models mirrored networking instead of NAT: eth0's other end
	// is the Windows adapter itself, a veth end at EthMTU that refuses
	// larger frames without an error, routing on to the peer with no NAT;
	// fragments from WSL are dropped there too. Sources then makes
	// detection say mirrored.
	Mirrored bool
	// Consomme models WSL's user-mode NAT (networkingMode=consomme): the
	// same links as NAT, and Sources makes detection say consomme.
	Consomme bool
	// Tailscale is tailscale0's shape: tailscaled's (the default) or a bare
	// wireguard-go device of that name.
	Tailscale TailscaleShape
	// ExternalTunnel starts no wireguard-go tailscale0: the caller runs
	// the tunnel itself (a real tailscaled in WSLNetNS and PeerNetNS, see
	// external_linux.go). The lab's tailscale0 checks (Download, Upload,
	// Ping, RestartTunnel) then have no tunnel; Transfers takes the
	// caller's tunnel addresses instead.
	ExternalTunnel bool
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
	if o.Mirrored && o.Consomme {
		return o, errors.New("lab: Mirrored and Consomme are two networking modes; pick one")
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
// WSL→peer direction carrying large packets. In mirrored mode that
// strictness is the point: the Windows adapter's end refuses what is larger
// than the adapter's MTU.
type Lab struct {
	opts   Options
	prefix string
	wsl    *space
	hv     *space // Hyper-V's NAT, or in mirrored mode the Windows adapter
	peer   *space
	corp   *space // nil without CorporateVPN

	ts *Tunnel // tailscale0
	pt *Tunnel // the port tunnel; nil without PortTunnel

	// spawner is a goroutine locked to its own thread that forks the nodes:
	// Pdeathsig fires when the forking *thread* exits (golang/go#27505), and
	// only a thread that nothing else runs on is sure to live as long as the lab.
	spawner chan func()

	// started are the processes StartProcess started; guarded by mu.
	started []*os.Process

	mu     sync.Mutex // guards the tunnels' nodes and ports, the links they sit on, adapter and closed
	closed bool
	// adapter is the Windows adapter's MTU in mirrored mode.
	adapter int
	// eth4 is eth0's IPv4 address and gw4 its gateway, as WSL last set them.
	eth4 netip.Prefix
	gw4  netip.Addr
	// bootID is the WSL kernel's boot id, new after each VMRestart.
	bootID string

	closeOnce sync.Once
	closeErr  error
}

// space is one named network namespace with an fd and a netlink handle in it.
type space struct {
	name string
	ns   *ns.NetNS
	nl   *netlink.Handle
}

// New builds a lab in fresh network namespaces named
// wslmtu-<pid>-<random>-{wsl,hyperv,peer} (windows instead of hyperv when
// mirrored, and corp with CorporateVPN).
// It returns once a small packet has crossed each tunnel. The caller must
// Close it; for a command, CloseOnSignal also closes it on SIGINT/SIGTERM.
func New(opts Options) (l *Lab, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: needs root to create network namespaces")
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	// The owner's PID in the name lets RemoveStale tell leftovers of a
	// crashed run from namespaces of a lab still running elsewhere.
	prefix := fmt.Sprintf("wslmtu-%d-%s-", os.Getpid(), hex.EncodeToString(rnd[:4]))
	l = &Lab{opts: opts, prefix: prefix, spawner: make(chan func()), adapter: opts.EthMTU, eth4: wslEth4, gw4: hvWSL4.Addr()}
	if l.bootID, err = newBootID(); err != nil {
		return nil, err
	}
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
	// A WireGuard peer uses its own tunnel MTU; one below WSL's would
	// advertise a smaller MSS and hide the problem of a larger WSL tunnel.
	peerMTU := max(peerTunMTU, opts.TunnelMTU)
	if l.ts, err = l.newTunnel(TunnelName, peerTun, opts.TunnelMTU, peerMTU, wslWGPort, peerWGPort,
		[4]netip.Prefix{wslTun4, wslTun6, peerTun4, peerTun6}); err != nil {
		return l, err
	}
	// tailscaled marks its sockets (and adds its rules once tailscale0 is
	// up); a bare wireguard-go device answers wgctrl on its UAPI socket.
	if opts.Tailscale == TailscaleUnmarked {
		l.ts.uapi = true
	} else {
		l.ts.fwmark = TailscaleMark
	}
	if opts.PortTunnel {
		name := portTunnelPrefix + hex.EncodeToString(rnd[4:])
		if l.pt, err = l.newTunnel(name, peerPTun, opts.TunnelMTU, peerMTU, PortTunnelPort, peerPTunPort,
			[4]netip.Prefix{wslPTun4, wslPTun6, peerPTun4, peerPTun6}); err != nil {
			return l, err
		}
		l.pt.uapi = true
	}
	roles := []struct {
		dst  **space
		role string
	}{{&l.wsl, "wsl"}, {&l.hv, l.middleRole()}, {&l.peer, "peer"}}
	if opts.CorporateVPN {
		roles = append(roles, struct {
			dst  **space
			role string
		}{&l.corp, "corp"})
	}
	for _, s := range roles {
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
	if err = l.waitTunnels(); err != nil {
		return l, err
	}
	return l, nil
}

func (l *Lab) middleRole() string {
	if l.opts.Mirrored {
		return "windows"
	}
	return "hyperv"
}

func (l *Lab) tunnels() []*Tunnel {
	var out []*Tunnel
	if !l.opts.ExternalTunnel {
		out = append(out, l.ts)
	}
	if l.pt != nil {
		out = append(out, l.pt)
	}
	return out
}

func (l *Lab) spaces() []*space {
	out := []*space{l.wsl, l.hv, l.peer}
	if l.corp != nil {
		out = append(out, l.corp)
	}
	return out
}

func newSpace(name string) (*space, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("lab: ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	s := &space{name: name}
	var err error
	if s.ns, err = ns.Open(filepath.Join("/var/run/netns", name)); err != nil {
		s.close()
		return nil, fmt.Errorf("lab: open netns %s: %w", name, err)
	}
	if s.nl, err = netlink.NewHandleAt(s.ns.Handle()); err != nil {
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
	if s.ns != nil {
		_ = s.ns.Close()
	}
	if out, err := exec.Command("ip", "netns", "del", s.name).CombinedOutput(); err != nil {
		return fmt.Errorf("lab: ip netns del %s: %v: %s", s.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *space) sysctl(key, value string) error {
	return s.ns.Do(func() error {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("lab: sysctl %s=%s in %s: %w", key, value, s.name, err)
		}
		return nil
	})
}

// setupSpace turns off duplicate address detection, which would hold IPv6
// addresses back ~1 s, and brings lo up.
func (l *Lab) setupSpace(s *space) error {
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
	return nil
}

func (l *Lab) setupSysctls() error {
	for _, s := range l.spaces() {
		if err := l.setupSpace(s); err != nil {
			return err
		}
	}
	// A tun gets a random IPv6 link-local address unless one is derived
	// from a stable secret (RFC 7217), which for a tun, having no hardware
	// address, depends on nothing else: then a tunnel that reconnects comes
	// back with the same address, and `ip -6 route show table all` before
	// and after a tunnel's reconnect differs only in what wslmtu changed.
	if err := l.wsl.sysctl("net.ipv6.conf.default.stable_secret", labStableSecret); err != nil {
		return err
	}
	if err := l.hv.sysctl("net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	return l.hv.sysctl("net.ipv6.conf.all.forwarding", "1")
}

// labStableSecret is the WSL namespace's stable_secret (any fixed value).
const labStableSecret = "fd00:5:a:b:c:d:e:f"

func (l *Lab) setupLinks() error {
	if err := l.createEth(l.opts.EthMTU); err != nil {
		return err
	}
	// The LAN veth is made from inside hyperv with its peer end born in the
	// peer namespace, so no name ever appears in the root namespace.
	if err := l.middleLink(l.peer, lanName, lanMTU, lanName, lanMTU, hvLAN4, hvLAN6, peerLAN4, peerLAN6); err != nil {
		return err
	}
	if l.corp != nil {
		if err := l.middleLink(l.corp, vpnName, DefaultVPNMTU, corpName, corpMTU, hvVPN4, hvVPN6, corpLAN4, corpLAN6); err != nil {
			return err
		}
	}
	return nil
}

// middleLink connects the middle namespace (hyperv, or windows) to s: a
// veth named hvName there at hvMTU, name at mtu in s. Without NAT (mirrored
// mode) s routes WSL's subnets back through the middle.
func (l *Lab) middleLink(s *space, hvName string, hvMTU int, name string, mtu int, hv4, hv6, a4, a6 netip.Prefix) error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hvName, MTU: hvMTU},
		PeerName:      name,
		PeerMTU:       uint32(mtu),
		PeerNamespace: netlink.NsFd(s.ns.Handle()),
	}
	if err := l.hv.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("lab: create %s veth in %s: %w", hvName, l.hv.name, err)
	}
	if err := linkUpWithAddrs(l.hv, hvName, hv4, hv6); err != nil {
		return err
	}
	if err := linkUpWithAddrs(s, name, a4, a6); err != nil {
		return err
	}
	if !l.opts.Mirrored {
		return nil
	}
	link, err := s.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("lab: %s in %s: %w", name, s.name, err)
	}
	for _, r := range []struct{ dst, gw netip.Prefix }{{wslEth4, hv4}, {wslEth6, hv6}} {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixToIPNet(r.dst.Masked()), Gw: r.gw.Addr().AsSlice()}
		if err := s.nl.RouteAdd(route); err != nil {
			return fmt.Errorf("lab: route %s via %s in %s: %w", r.dst.Masked(), r.gw.Addr(), s.name, err)
		}
	}
	return nil
}

// createEth makes WSL's eth0 with its Hyper-V end (in mirrored mode the
// Windows adapter, at the adapter's MTU), then configures it as WSL does
// (configureEth).
func (l *Lab) createEth(mtu int) error {
	hvMTU := hvWSLMTU
	if l.opts.Mirrored {
		hvMTU = l.adapter
	}
	eth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: EthName, MTU: mtu},
		PeerName:      hvWSLName,
		PeerMTU:       uint32(hvMTU),
		PeerNamespace: netlink.NsFd(l.hv.ns.Handle()),
	}
	if err := l.wsl.nl.LinkAdd(eth); err != nil {
		return fmt.Errorf("lab: create %s veth in %s: %w", EthName, l.wsl.name, err)
	}
	hvAddrs := []netip.Prefix{hvWSL4}
	if l.gw4 != hvWSL4.Addr() {
		hvAddrs = append(hvAddrs, netip.PrefixFrom(l.gw4, hvWSL4.Bits()))
	}
	if l.opts.IPv6Underlay {
		hvAddrs = append(hvAddrs, hvWSL6)
	}
	if err := linkUpWithAddrs(l.hv, hvWSLName, hvAddrs...); err != nil {
		return err
	}
	if err := linkUpWithAddrs(l.wsl, EthName); err != nil {
		return err
	}
	link, err := l.wsl.nl.LinkByName(EthName)
	if err != nil {
		return fmt.Errorf("lab: %s in %s: %w", EthName, l.wsl.name, err)
	}
	if l.opts.Mirrored {
		// A veth passes GSO super-packets (wireguard-go batches its UDP
		// sends with UDP_SEGMENT, TCP uses TSO) whatever its MTU, and checks
		// only single frames; a Windows adapter checks every frame. One
		// segment at most makes the kernel segment before the veth, so the
		// adapter's end sees, and refuses, each frame above its MTU.
		if err := l.wsl.nl.LinkSetGSOMaxSegs(link, 1); err != nil {
			return fmt.Errorf("lab: gso_max_segs 1 on %s in %s: %w", EthName, l.wsl.name, err)
		}
	}
	return l.configureEth(link.Attrs().Index)
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

// firewallRules is the middle namespace's behaviour: fragments from WSL
// dropped before the defragmenter (priority -400) can reassemble them, no
// ICMP fragmentation-needed or packet-too-big ever sent back to WSL (as
// Windows is reported to behave towards a VM behind a VPN adapter), and
// unless mirrored, NAT for WSL towards the LAN and the corporate VPN.
func firewallRules(nat bool) string {
	rules := fmt.Sprintf(`table inet wslmtu {
	chain fragments {
		type filter hook prerouting priority -450; policy accept;
		iifname %[1]q ip frag-off & 0x3fff != 0 counter drop
		iifname %[1]q exthdr frag exists counter drop
	}
	chain too_big {
		type filter hook output priority 0; policy accept;
		oifname %[1]q icmp type destination-unreachable icmp code frag-needed counter drop
		oifname %[1]q icmpv6 type packet-too-big counter drop
	}
}
`, hvWSLName)
	if !nat {
		return rules
	}
	return rules + fmt.Sprintf(`table ip wslmtu_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname { %[1]q, %[2]q } ip saddr %[3]s masquerade
	}
}
table ip6 wslmtu_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname { %[1]q, %[2]q } ip6 saddr %[4]s masquerade
	}
}
`, lanName, vpnName, wslEth4.Masked(), wslEth6.Masked())
}

func (l *Lab) setupFirewall() error {
	cmd := exec.Command("ip", "netns", "exec", l.hv.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(firewallRules(!l.opts.Mirrored))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab: nft ruleset in %s: %v: %s", l.hv.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// startNodes starts the peers, and installs the middle's rules meanwhile,
// before WSL's nodes: WSL's node sends its first handshake as soon as it is
// up, and if that is lost (no NAT yet, nobody listening yet) wireguard-go
// only retries after REKEY_TIMEOUT (5 s).
func (l *Lab) startNodes() error {
	fw := make(chan error, 1)
	go func() { fw <- l.setupFirewall() }()
	errs := []error{}
	for _, t := range l.tunnels() {
		errs = append(errs, l.startPeer(t))
	}
	if err := errors.Join(append(errs, <-fw)...); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range l.tunnels() {
		if err := l.startWSL(t, t.mtu, t.port); err != nil {
			return err
		}
	}
	return nil
}

// startTunnel runs a node and gives its tun addresses, as tailscaled does
// after creating tailscale0. Below 1280 the kernel refuses IPv6 on the link,
// so the IPv6 address is left out, as it would be lost in real life.
func (l *Lab) startTunnel(s *space, name string, mtu int, cfg nodeConfig, uapi bool, a4, a6 netip.Prefix) (*node, error) {
	var n *node
	var err error
	l.spawn(func() { n, err = startNode(s.name, name, mtu, cfg, uapi) })
	if err == nil {
		err = n.waitReady(nodeStart)
	}
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

// waitTunnels returns once a small ping crosses every tunnel.
func (l *Lab) waitTunnels() error {
	ts := l.tunnels()
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = t.wait()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Lab) nodeStderr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, n := range l.nodes() {
		if s := strings.TrimSpace(n.stderr.String()); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " | ")
}

// nodes are the running nodes, WSL's first; l.mu must be held.
func (l *Lab) nodes() []*node {
	var out []*node
	for _, t := range l.tunnels() {
		if t.wslNode != nil {
			out = append(out, t.wslNode)
		}
	}
	for _, t := range l.tunnels() {
		if t.peerNode != nil {
			out = append(out, t.peerNode)
		}
	}
	return out
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

// Close kills the WireGuard nodes (removing the port tunnel's UAPI socket)
// and deletes the namespaces, which removes every link of the lab. It is
// safe to call more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		nodes := l.nodes()
		for _, n := range nodes {
			_ = n.cmd.Process.Kill()
		}
		for _, n := range nodes {
			n.kill()
		}
		for _, p := range l.started {
			_ = p.Kill()
		}
		close(l.spawner)
		l.mu.Unlock()
		var spaces []*space
		for _, s := range l.spaces() {
			if s != nil {
				spaces = append(spaces, s)
			}
		}
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
func (l *Lab) Namespaces() []string {
	var names []string
	for _, s := range l.spaces() {
		names = append(names, s.name)
	}
	return names
}

// WSLNetlink is a netlink handle on the WSL namespace, owned by the lab and
// valid until Close: what fix.HostAt and the agent need to act on "WSL".
func (l *Lab) WSLNetlink() *netlink.Handle { return l.wsl.nl }

// WSLNamespace is the WSL namespace; valid until Close.
func (l *Lab) WSLNamespace() *ns.NetNS { return l.wsl.ns }

// WSLNetNSHandle is the WSL namespace, for netlink subscriptions; valid until Close.
func (l *Lab) WSLNetNSHandle() netns.NsHandle { return l.wsl.ns.Handle() }

// DoWSL runs fn on a thread inside the WSL namespace, so that netlink handles,
// sockets and iptables calls fn makes act on the lab's "WSL". Goroutines fn
// starts run outside it.
func (l *Lab) DoWSL(fn func() error) error { return l.wsl.ns.Do(fn) }

// NetworkingMode is the WSL networking mode the lab models, in detect's
// words: "nat", "mirrored" or "consomme".
func (l *Lab) NetworkingMode() string {
	switch {
	case l.opts.Mirrored:
		return detect.ModeMirrored
	case l.opts.Consomme:
		return detect.ModeConsomme
	}
	return detect.ModeNAT
}

// Sources are the host's detection sources, except that `wslinfo
// --networking-mode` answers the lab's mode, as it would inside WSL (the
// links alone cannot tell a mirrored lab, one eth0 and no loopback0, from
// NAT), and /proc/sys/kernel/random/boot_id is the lab's WSL kernel's.
func (l *Lab) Sources() detect.Sources {
	src := detect.HostSources()
	src.Root = bootRoot{FS: src.Root, l: l}
	global := src.WireGuard
	src.WireGuard = func(name string) (detect.WireGuardDevice, bool) {
		if name == TunnelName {
			l.mu.Lock()
			path := uapiSocket(l.wsl.name, TunnelName)
			l.mu.Unlock()
			return readUAPI(path)
		}
		return global(name)
	}
	mode, run := l.NetworkingMode(), src.Run
	src.Run = func(name string, args ...string) ([]byte, error) {
		if name == "wslinfo" && slices.Equal(args, []string{"--networking-mode"}) {
			return []byte(mode + "\n"), nil
		}
		return run(name, args...)
	}
	return src
}

// NodePIDs are the process IDs of the WireGuard nodes (WSL's first).
func (l *Lab) NodePIDs() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pids []int
	for _, n := range l.nodes() {
		pids = append(pids, n.pid())
	}
	return pids
}

// PeerTunnelIP is the peer's address inside tailscale0's tunnel.
func (l *Lab) PeerTunnelIP(v6 bool) netip.Addr { return l.ts.PeerIP(v6) }

// WSLTunnelIP is WSL's address inside tailscale0's tunnel.
func (l *Lab) WSLTunnelIP(v6 bool) netip.Addr { return l.ts.WSLIP(v6) }

// PortTunnel is the tunnel known only by its listen port (Options.PortTunnel);
// nil without it.
func (l *Lab) PortTunnel() *Tunnel { return l.pt }

func (l *Lab) linkMTU(name string) (int, error) {
	link, err := l.wsl.nl.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("lab: %s in %s: %w", name, l.wsl.name, err)
	}
	return link.Attrs().MTU, nil
}

func setLinkMTU(s *space, name string, mtu int) error {
	if err := checkMTU(name+" MTU", mtu); err != nil {
		return err
	}
	link, err := s.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("lab: %s in %s: %w", name, s.name, err)
	}
	if err := s.nl.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("lab: set %s MTU %d in %s: %w", name, mtu, s.name, err)
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
// In mirrored mode the Windows adapter's MTU is left as it is.
func (l *Lab) SetEthMTU(mtu int) error { return setLinkMTU(l.wsl, EthName, mtu) }

// SetTunnelMTU sets tailscale0's MTU in place; wireguard-go follows it.
func (l *Lab) SetTunnelMTU(mtu int) error { return setLinkMTU(l.wsl, TunnelName, mtu) }

// SetVPNMTU sets the Windows VPN adapter's MTU (CorporateVPN), as a VPN
// client does on reconnecting; WSL would then push the new minimum into
// eth0, which is the caller's SetEthMTU.
func (l *Lab) SetVPNMTU(mtu int) error {
	if l.corp == nil {
		return errors.New("lab: no corporate VPN in this lab (Options.CorporateVPN)")
	}
	return setLinkMTU(l.hv, vpnName, mtu)
}

// RestartTunnel kills WSL's tailscale0 node and starts a new one whose
// tailscale0 comes back at mtu with its addresses, as tailscaled does on every
// reconnect. It returns once traffic crosses the tunnel again.
func (l *Lab) RestartTunnel(mtu int) error { return l.ts.Restart(mtu, 0) }

// RecreateEth deletes eth0 and makes it again at mtu with its address and
// default route, as a WSL restart does (in mirrored mode, with the Windows
// adapter at mtu too). It returns once traffic crosses the tunnels again.
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
		l.adapter = mtu
		return l.createEth(mtu)
	}()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.waitTunnels()
}

// RoutingDump is what `ip rule`, `ip -6 rule`, `ip route show table all`
// and `ip -6 route show table all` print inside WSL, each under its
// command: what revert must leave byte-identical.
func (l *Lab) RoutingDump() (string, error) {
	var b strings.Builder
	for _, args := range [][]string{
		{"rule"}, {"-6", "rule"}, {"route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"},
	} {
		cmd := append([]string{"netns", "exec", l.wsl.name, "ip"}, args...)
		out, err := exec.Command("ip", cmd...).Output()
		if err != nil {
			return "", fmt.Errorf("lab: ip %s in %s: %w", strings.Join(args, " "), l.wsl.name, err)
		}
		fmt.Fprintf(&b, "$ ip %s\n%s", strings.Join(args, " "), out)
	}
	return b.String(), nil
}

var (
	staleName = regexp.MustCompile(`^wslmtu-([0-9]+)-[0-9a-f]{8}-(wsl|hyperv|windows|peer|corp)$`)
	staleUAPI = regexp.MustCompile(`^(` + portTunnelPrefix + `[0-9a-f]{4}|` + TunnelName + `)\.sock$`)
)

// uapiDir is where wireguard-go's UAPI sockets live, shared by all namespaces.
const uapiDir = "/var/run/wireguard"

// RemoveStale deletes lab namespaces left behind by processes that died
// without Close (their WireGuard nodes die with them, the namespaces do not),
// and port tunnels' UAPI sockets nobody listens on any more, and returns
// their names. Namespaces of live processes are left alone.
func RemoveStale() ([]string, error) {
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
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
		if err := (&space{name: e.Name()}).close(); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	socks, _ := os.ReadDir(uapiDir)
	for _, e := range socks {
		if !staleUAPI.MatchString(e.Name()) {
			continue
		}
		p := filepath.Join(uapiDir, e.Name())
		if c, err := net.Dial("unix", p); err == nil {
			c.Close()
			continue
		}
		if err := os.Remove(p); err == nil {
			removed = append(removed, p)
		}
	}
	return removed, errors.Join(errs...)
}

// CorporateServerIP is the address of the server behind the Windows VPN
// (Options.CorporateVPN), over IPv6 if v6.
func (l *Lab) CorporateServerIP(v6 bool) netip.Addr {
	if v6 {
		return corpLAN6.Addr()
	}
	return corpLAN4.Addr()
}
