package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
)

// Options for Run.
type Options struct {
	Config
	// Family forces 4 or 6 when HOST resolves to both; 0 takes the first.
	Family int
}

// Run resolves host, finds the route towards it, and measures the path with
// a real ICMP socket. cfg says which interfaces are tunnels and which is the
// outer one, as for every other command. The socket and the route lookup are
// made in the calling goroutine's network namespace before anything else
// starts, so a caller may run it on a thread locked into another namespace.
func Run(ctx context.Context, host string, cfg config.Config, opts Options) (*Result, error) {
	if opts.Timeout != 0 {
		if err := CheckTimeout(opts.Timeout); err != nil {
			return nil, err
		}
	}
	// The timeout bounds the name's resolution too: a name server that
	// does not answer would otherwise hold the probe for the resolver's own
	// timeouts (5 s per try, twice).
	timeout := cmp.Or(opts.Timeout, DefaultTimeout)
	rctx, cancel := context.WithTimeout(ctx, timeout)
	addr, err := resolve(rctx, host, opts.Family)
	cancel()
	if err != nil && errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, fmt.Errorf("cannot resolve %q: no answer from the name servers within %s (--timeout)", host, timeout)
	}
	if err != nil {
		return nil, err
	}
	t, err := TargetFor(host, addr, cfg)
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
		return a, CheckAddr(host, a)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: cannot resolve %q: %v", ErrBadHost, host, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("%w: %q has no address", ErrBadHost, host)
	}
	// A name may resolve to a sinkhole (0.0.0.0) next to real addresses.
	var first error
	for _, a := range addrs {
		err := CheckAddr(host, a.Unmap())
		if err == nil {
			return a.Unmap(), nil
		}
		first = cmp.Or(first, err)
	}
	return netip.Addr{}, first
}

// TargetFor looks up the route to addr (netlink RouteGet) and describes it.
// A zone (fe80::1%eth0) makes the route leave through that interface.
func TargetFor(host string, addr netip.Addr, cfg config.Config) (Target, error) {
	t, index, err := routeTo(host, addr)
	if err != nil {
		return t, err
	}
	st, err := observe(cfg)
	if err != nil {
		return t, fmt.Errorf("probe %s: %w", host, err)
	}
	tunnelTarget(&t, st, index)
	return t, nil
}

// routeTo is the route to addr as the kernel chooses it (netlink RouteGet),
// with its interface's index.
func routeTo(host string, addr netip.Addr) (Target, int, error) {
	t := Target{Host: host, Addr: addr}
	var opts netlink.RouteGetOptions
	if zone := addr.Zone(); zone != "" {
		link, err := zoneLink(zone)
		if err != nil {
			return t, 0, fmt.Errorf("%w: %s: no interface %q for its zone", ErrBadHost, addr, zone)
		}
		opts.OifIndex = link.Attrs().Index
	}
	routes, err := netlink.RouteGetWithOptions(addr.WithZone("").AsSlice(), &opts)
	if err != nil {
		if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
			return t, 0, fmt.Errorf("probe %s: no route to %s", host, addr)
		}
		return t, 0, fmt.Errorf("probe %s: route lookup for %s: %w", host, addr, err)
	}
	if len(routes) == 0 {
		return t, 0, fmt.Errorf("probe %s: no route to %s", host, addr)
	}
	r := routes[0]
	link, err := netlink.LinkByIndex(r.LinkIndex)
	if err != nil {
		return t, 0, fmt.Errorf("probe %s: interface %d of the route to %s: %w", host, r.LinkIndex, addr, err)
	}
	a := link.Attrs()
	if r.Type == unix.RTN_BROADCAST {
		return t, 0, fmt.Errorf("%w: %s is the broadcast address of %s's subnet: a probe measures the path to one host", ErrBadHost, addr, a.Name)
	}
	t.Interface = a.Name
	t.InterfaceMTU = a.MTU
	t.RouteMTU = r.MTU
	return t, a.Index, nil
}

func zoneLink(zone string) (netlink.Link, error) {
	if n, err := strconv.Atoi(zone); err == nil {
		return netlink.LinkByIndex(n)
	}
	return netlink.LinkByName(zone)
}

// observe is detect's view of this namespace's links and routes under cfg:
// which interfaces are tunnels (the config's matcher, and kernel WireGuard
// devices), of what kind, and which is the outer one. A config whose
// patterns select the outer interface is refused here as everywhere else.
func observe(cfg config.Config) (detect.State, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return detect.State{}, err
	}
	defer h.Close()
	snap, err := detect.Read(&detect.Kernel{H: h})
	if err != nil {
		return detect.State{}, err
	}
	return detect.Derive(detect.Inputs{Snapshot: snap}, cfg)
}

// tunnelTarget marks t as going through a tunnel when the route's link is
// one of st's tunnels, with its kind and the outer interface beneath it.
func tunnelTarget(t *Target, st detect.State, linkIndex int) {
	for _, l := range slices.Concat(st.Tunnels, st.DownTunnels) {
		if l.Index != linkIndex {
			continue
		}
		t.Tunnel, t.Spec = true, detect.SpecOf(l)
		if st.Outer != nil {
			t.Outer, t.OuterMTU = st.Outer.Name, st.Outer.MTU
		}
		return
	}
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

var _ Path = (*Conn)(nil)

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

// setDF sets what "DF" means for the next sends. IPv6 has no DF bit
// (routers never fragment, only the sender does), so DF there is
// IPV6_DONTFRAG: the kernel refuses a packet over the path MTU (EMSGSIZE)
// instead of fragmenting it. Without DF it is WANT with DONTFRAG off, so the
// kernel fragments locally to the path MTU it knows; DONT would send the
// same fragments, and one setting for probe and lab alike is the point.
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

// Echo sends p every interval until one of its echoes comes back (nil) or
// ctx is done (ctx's error, wrapped: nothing came back). A size the kernel
// refuses to send (the route or a learned path MTU is smaller, with DF) is an
// error wrapping unix.EMSGSIZE at once, as is any other send failure: those
// are local, not a silent path. It is the one-size check the lab makes.
func (c *Conn) Echo(ctx context.Context, p Probe, interval time.Duration) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, interval)
		rep, err := c.Send(rctx, []Probe{p}, 1)
		cancel()
		switch {
		case err != nil:
			return err
		case rep.Got[p]:
			return nil
		case rep.TooBig[p]:
			return fmt.Errorf("send %d-byte echo to %s: %w", p.Size, c.ip, unix.EMSGSIZE)
		case ctx.Err() != nil:
			return fmt.Errorf("no reply from %s: %w", c.ip, ctx.Err())
		}
	}
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
