package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Options for Run.
type Options struct {
	Config
	// Family forces 4 or 6 when HOST resolves to both; 0 takes the first.
	Family int
}

// Run resolves host, finds the route towards it, and measures the path with
// a real ICMP socket. The socket and the route lookup are made in the calling
// goroutine's network namespace before anything else starts, so a caller may
// run it on a thread locked into another namespace.
func Run(ctx context.Context, host string, opts Options) (*Result, error) {
	addr, err := resolve(ctx, host, opts.Family)
	if err != nil {
		return nil, err
	}
	t, err := TargetFor(host, addr)
	if err != nil {
		return nil, err
	}
	c, err := Dial(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return Search(ctx, c, t, opts.Config)
}

func resolve(ctx context.Context, host string, family int) (netip.Addr, error) {
	if host == "" {
		return netip.Addr{}, fmt.Errorf("%w: empty host name", ErrBadHost)
	}
	network := "ip"
	switch family {
	case 0:
	case 4:
		network = "ip4"
	case 6:
		network = "ip6"
	default:
		return netip.Addr{}, fmt.Errorf("%w: family %d is neither 4 nor 6", ErrBadHost, family)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if (family == 4 && !a.Is4()) || (family == 6 && !a.Is6()) {
			return netip.Addr{}, fmt.Errorf("%w: %s is not an IPv%d address", ErrBadHost, host, family)
		}
		return a, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: cannot resolve %q: %v", ErrBadHost, host, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("%w: %q has no address", ErrBadHost, host)
	}
	return addrs[0].Unmap(), nil
}

// TargetFor looks up the route to addr (netlink RouteGet) and describes it.
func TargetFor(host string, addr netip.Addr) (Target, error) {
	t := Target{Host: host, Addr: addr}
	routes, err := netlink.RouteGet(addr.AsSlice())
	if err != nil {
		if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
			return t, fmt.Errorf("probe %s: no route to %s", host, addr)
		}
		return t, fmt.Errorf("probe %s: route lookup for %s: %w", host, addr, err)
	}
	if len(routes) == 0 {
		return t, fmt.Errorf("probe %s: no route to %s", host, addr)
	}
	r := routes[0]
	link, err := netlink.LinkByIndex(r.LinkIndex)
	if err != nil {
		return t, fmt.Errorf("probe %s: interface %d of the route to %s: %w", host, r.LinkIndex, addr, err)
	}
	a := link.Attrs()
	t.Interface = a.Name
	t.InterfaceMTU = a.MTU
	t.RouteMTU = r.MTU
	t.Tunnel = IsTunnel(link)
	return t, nil
}

// IsTunnel tells whether traffic through link gets wrapped into outer packets.
func IsTunnel(link netlink.Link) bool {
	name := link.Attrs().Name
	if strings.HasPrefix(name, "tailscale") || strings.HasPrefix(name, "wg") {
		return true
	}
	if tt, ok := link.(*netlink.Tuntap); ok {
		return tt.Mode == netlink.TUNTAP_MODE_TUN
	}
	switch link.Type() {
	case "wireguard", "ipip", "gre", "ip6gre", "sit", "ip6tnl", "vti", "vti6", "vxlan", "geneve":
		return true
	}
	// A tun device (wireguard-go's included) has no link-layer header.
	return link.Attrs().EncapType == "none"
}

// Conn is a Path over an ICMP socket: raw when allowed (root, CAP_NET_RAW),
// otherwise an unprivileged ping socket.
type Conn struct {
	pc  net.PacketConn
	rc  syscall.RawConn
	dst net.Addr
	ip  net.IP
	v6  bool
	raw bool
	id  int

	sendMu sync.Mutex // one Send at a time: DF is a socket option

	mu     sync.Mutex
	seq    uint16
	sent   map[uint16]Probe
	got    map[Probe]bool
	want   map[Probe]bool
	wakeup chan struct{}
	done   chan struct{}
}

// Dial opens an ICMP socket towards addr in the current network namespace.
func Dial(addr netip.Addr) (*Conn, error) {
	addr = addr.Unmap()
	v6 := addr.Is6()
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	raw := true
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		raw = false
		fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("cannot open an ICMP socket: %w", ErrNoPermission)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open an ICMP socket: %w", os.NewSyscallError("socket", err))
	}
	// A round's replies arrive in one burst: room for them all.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	if !raw {
		// net.FilePacketConn needs a bound datagram socket to know its address.
		var sa unix.Sockaddr = &unix.SockaddrInet4{}
		if v6 {
			sa = &unix.SockaddrInet6{}
		}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("cannot bind the ping socket: %w", os.NewSyscallError("bind", err))
		}
	}
	f := os.NewFile(uintptr(fd), "icmp")
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("cannot use the ICMP socket: %w", err)
	}
	rc, err := pc.(syscall.Conn).SyscallConn()
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("cannot use the ICMP socket: %w", err)
	}
	ip := net.IP(addr.AsSlice())
	var dst net.Addr = &net.IPAddr{IP: ip, Zone: addr.Zone()}
	if !raw {
		dst = &net.UDPAddr{IP: ip, Zone: addr.Zone()}
	}
	c := &Conn{
		pc: pc, rc: rc, dst: dst, ip: ip, v6: v6, raw: raw,
		id:   rand.IntN(1 << 16),
		seq:  uint16(rand.IntN(1 << 16)),
		sent: map[uint16]Probe{}, got: map[Probe]bool{},
		done: make(chan struct{}),
	}
	go c.read()
	return c, nil
}

// Close closes the socket and stops the reader.
func (c *Conn) Close() error {
	err := c.pc.Close()
	<-c.done
	return err
}

// Raw tells whether the socket is a raw one (else a ping socket).
func (c *Conn) Raw() bool { return c.raw }

func (c *Conn) setDF(df bool) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		f := int(fd)
		if c.v6 {
			mode, dontfrag := unix.IPV6_PMTUDISC_WANT, 0
			if df {
				mode, dontfrag = unix.IPV6_PMTUDISC_DO, 1
			}
			if serr = unix.SetsockoptInt(f, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, mode); serr == nil {
				serr = unix.SetsockoptInt(f, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, dontfrag)
			}
			return
		}
		// DONT rather than WANT: the fragment test must send real fragments
		// without DF, whatever path MTU the kernel has cached.
		mode := unix.IP_PMTUDISC_DONT
		if df {
			mode = unix.IP_PMTUDISC_DO
		}
		serr = unix.SetsockoptInt(f, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, mode)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set don't-fragment=%v on the ICMP socket: %w", df, err)
	}
	return nil
}

// Send implements Path.
func (c *Conn) Send(ctx context.Context, probes []Probe, copies int) (Replies, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()

	wakeup := make(chan struct{}, 1)
	c.mu.Lock()
	c.want = map[Probe]bool{}
	for _, p := range probes {
		if !c.got[p] {
			c.want[p] = true
		}
	}
	c.wakeup = wakeup
	c.mu.Unlock()

	tooBig := map[Probe]bool{}
	for _, df := range []bool{true, false} {
		var batch []Probe
		for _, p := range probes {
			if p.DF == df {
				batch = append(batch, p)
			}
		}
		if len(batch) == 0 {
			continue
		}
		if err := c.setDF(df); err != nil {
			return Replies{}, err
		}
		for range copies {
			for _, p := range batch {
				if tooBig[p] {
					continue
				}
				err := c.send(p)
				switch {
				case err == nil:
				case errors.Is(err, unix.EMSGSIZE):
					tooBig[p] = true
					c.mu.Lock()
					delete(c.want, p)
					c.mu.Unlock()
				case errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EAGAIN):
					// A full queue drops this copy like the path would: loss.
				default:
					return Replies{}, fmt.Errorf("send %d-byte echo to %s: %w", p.Size, c.ip, err)
				}
			}
		}
	}

	for {
		c.mu.Lock()
		left := len(c.want)
		c.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-wakeup:
			continue
		}
		break
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.want, c.wakeup = nil, nil
	got := make(map[Probe]bool, len(c.got))
	for p := range c.got {
		got[p] = true
	}
	return Replies{Got: got, TooBig: tooBig}, nil
}

func (c *Conn) send(p Probe) error {
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.sent[seq] = p
	c.mu.Unlock()

	data := make([]byte, p.Size)
	for i := range data {
		data[i] = byte(i)
	}
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if c.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	// The kernel fills the ICMPv6 checksum (it needs the pseudo-header), and a
	// ping socket replaces the identifier with its own.
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: c.id, Seq: int(seq), Data: data}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return err
	}
	_, err = c.pc.WriteTo(b, c.dst)
	return err
}

func (c *Conn) read() {
	defer close(c.done)
	proto := 1
	if c.v6 {
		proto = 58
	}
	buf := make([]byte, 1<<16)
	for {
		n, from, err := c.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		var fromIP net.IP
		switch a := from.(type) {
		case *net.IPAddr:
			fromIP = a.IP
		case *net.UDPAddr:
			fromIP = a.IP
		}
		if !fromIP.Equal(c.ip) {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || (c.raw && echo.ID != c.id) {
			continue
		}
		c.mu.Lock()
		p, ok := c.sent[uint16(echo.Seq)]
		if ok && len(echo.Data) == p.Size {
			c.got[p] = true
			if c.want[p] {
				delete(c.want, p)
				if c.wakeup != nil {
					select {
					case c.wakeup <- struct{}{}:
					default:
					}
				}
			}
		}
		c.mu.Unlock()
	}
}
