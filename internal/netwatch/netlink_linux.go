package netwatch

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/ns"
)

// Netlink subscribes to the kernel's link, route, rule and address groups
// on one socket, read by one goroutine on a thread of its own, blocked in
// recvfrom as the least reactor is: the kernel wakes that thread, and it
// decodes and stamps each message, with no poller between them. It can
// also write armed repairs itself as it reads the reset (see Repairs). It
// is also a Dumper of the same namespace.
type Netlink struct {
	// NS is the namespace to follow; nil follows the caller's.
	NS *ns.NetNS
	// BufferSize is the socket's receive buffer; 0 picks 4 MiB. Tests make
	// it tiny to force ENOBUFS.
	BufferSize int
	// Repairs, when set, are the MTU repairs the reader writes back itself
	// as it reads the reset, before handing the event on.
	Repairs *Repairs
}

// Netlink is both the agent's event source and its dumper.
var (
	_ Source = Netlink{}
	_ Dumper = Netlink{}
)

// target is the namespace's handle for vishvananda/netlink's *At calls.
func (n Netlink) target() netns.NsHandle {
	if n.NS == nil {
		return netns.None()
	}
	return n.NS.Handle()
}

func (n Netlink) Subscribe(ctx context.Context) (<-chan Event, error) {
	target := n.target()
	s, err := nl.SubscribeAt(target, netns.None(), unix.NETLINK_ROUTE,
		unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE, unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_IPV6_RULE,
		unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR)
	if err != nil {
		return nil, fmt.Errorf("subscribing to link, route, rule and address changes: %w", err)
	}
	size := n.BufferSize
	if size == 0 {
		size = 4 << 20
	}
	if err := s.SetReceiveBufferSize(size, true); err != nil {
		s.Close()
		return nil, fmt.Errorf("netlink receive buffer: %w", err)
	}
	r, err := newReader(s, target)
	if err != nil {
		return nil, err
	}
	out := make(chan Event, 1024)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			r.wake() // a thread blocked in recvfrom is not woken by a close
		case <-done:
		}
		<-done
		r.close()
	}()
	go func() {
		defer close(done)
		defer close(out)
		// The thread stays blocked in the kernel between events; it is
		// never handed back (the runtime ends it with this goroutine).
		runtime.LockOSThread()
		buf := make([]byte, receiveBuffer)
		names := linkNames{}
		var sent uint64
		for {
			msgs, err := r.receive(buf)
			at := time.Now()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				out <- Event{At: at, Err: fmt.Errorf("netlink: %w", err)}
				return
			}
			for m := range messages(msgs) {
				ev, ok := decode(m, at, names)
				if !ok {
					continue
				}
				if n.Repairs != nil && ev.Link != nil && !ev.Gone {
					n.Repairs.try(&ev, sent, r)
				}
				select {
				case out <- ev:
					sent++
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// receiveBuffer holds the largest message batch the kernel sends: a dump
// reply is at most 32 KiB, a notification one message.
const receiveBuffer = 64 << 10

// conn is a netlink socket for dumps, read through the runtime's poller into a buffer
// the caller keeps: vishvananda/netlink's Receive allocates 64 KiB a call,
// which under a burst of 100k route events was most of the agent's garbage.
type conn struct {
	f  *os.File
	rc syscall.RawConn
}

// newConn takes over s's socket (s is closed; a duplicate stays open).
func newConn(s *nl.NetlinkSocket) (*conn, error) {
	fd, err := unix.Dup(s.GetFd())
	s.Close()
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &conn{f: f, rc: rc}, nil
}

func (c *conn) Close() error { return c.f.Close() }

// receive reads one batch of messages from the kernel into buf.
func (c *conn) receive(buf []byte) ([]byte, error) {
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		switch {
		case err != nil:
			return nil, err
		case rerr == unix.EINTR:
			continue
		case rerr != nil:
			return nil, rerr
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != nl.PidKernel {
			continue
		}
		return buf[:n], nil
	}
}

// messages walks a batch: each message's data is a slice of the batch,
// valid until the next receive (decode copies what it keeps).
func messages(b []byte) func(yield func(syscall.NetlinkMessage) bool) {
	return func(yield func(syscall.NetlinkMessage) bool) {
		for len(b) >= unix.NLMSG_HDRLEN {
			n := int(native.Uint32(b[0:4]))
			if n < unix.NLMSG_HDRLEN || n > len(b) {
				return
			}
			m := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Len: uint32(n), Type: native.Uint16(b[4:6]),
				Flags: native.Uint16(b[6:8]), Seq: native.Uint32(b[8:12]), Pid: native.Uint32(b[12:16])},
				Data: b[unix.NLMSG_HDRLEN:n]}
			if !yield(m) {
				return
			}
			b = b[min(len(b), (n+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		}
	}
}

func decode(m syscall.NetlinkMessage, at time.Time, names linkNames) (Event, bool) {
	switch m.Header.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		link, ok := decodeLink(m.Data, names)
		if !ok {
			return Event{}, false
		}
		return Event{At: at, Link: &link, Gone: m.Header.Type == unix.RTM_DELLINK}, true
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		r, ok := decodeRoute(m.Data)
		if !ok {
			return Event{}, false
		}
		return Event{At: at, Route: &r, Gone: m.Header.Type == unix.RTM_DELROUTE}, true
	case unix.RTM_NEWRULE, unix.RTM_DELRULE:
		return Event{At: at, Rules: true}, true
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		a, ok := decodeAddr(m.Data)
		if !ok {
			return Event{}, false
		}
		return Event{At: at, Addr: &a, Gone: m.Header.Type == unix.RTM_DELADDR}, true
	}
	return Event{}, false
}

// decodeLink reads what detect.Link holds from an RTM_*LINK message, as
// detect.LinkOf(netlink.LinkDeserialize(…)) does, without the rest:
// LinkDeserialize decodes every attribute (statistics included) into a new
// link each time, on the way to every repair. Names and kinds are
// interned, so a link seen before costs no allocation here.
func decodeLink(data []byte, names linkNames) (detect.Link, bool) {
	if len(data) < unix.SizeofIfInfomsg {
		return detect.Link{}, false
	}
	l := detect.Link{Index: int(int32(native.Uint32(data[4:8]))), Kind: "device",
		Up: native.Uint32(data[8:12])&unix.IFF_UP != 0}
	ok := eachAttr(data[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.IFLA_IFNAME:
			l.Name = names.intern(cstring(v))
		case unix.IFLA_MTU:
			if len(v) >= 4 {
				l.MTU = int(native.Uint32(v))
			}
		case unix.IFLA_LINKINFO:
			eachAttr(v, func(typ uint16, v []byte) {
				if typ == unix.IFLA_INFO_KIND {
					l.Kind = kindOf(cstring(v))
				}
			})
		}
	})
	return l, ok
}

func cstring(v []byte) []byte {
	for i, c := range v {
		if c == 0 {
			return v[:i]
		}
	}
	return v
}

// linkNames interns link names: one reader's, never shared.
type linkNames map[string]string

func (n linkNames) intern(b []byte) string {
	if s, ok := n[string(b)]; ok { // no allocation for the lookup
		return s
	}
	if len(n) >= 4096 { // links come and go (VPN reconnects): bound it
		clear(n)
	}
	s := string(b)
	n[s] = s
	return s
}

// kindOf is the kind as detect.LinkOf names it: vishvananda/netlink's type
// names are the kernel's IFLA_INFO_KIND, but for tun ("tuntap", which
// LinkOf calls "tun").
func kindOf(b []byte) string {
	switch string(b) {
	case "tun":
		return "tun"
	case "veth":
		return "veth"
	case "wireguard":
		return "wireguard"
	case "bridge":
		return "bridge"
	case "vlan":
		return "vlan"
	case "macvlan":
		return "macvlan"
	case "ipvlan":
		return "ipvlan"
	case "bond":
		return "bond"
	case "vxlan":
		return "vxlan"
	}
	return string(b)
}

// decodeRoute reads what detect.Route holds from an RTM_*ROUTE message;
// vishvananda/netlink keeps its route decoder private. It allocates only
// the strings it returns: a burst of 100k routes is decoded one by one.
func decodeRoute(data []byte) (detect.Route, bool) {
	if len(data) < unix.SizeofRtMsg {
		return detect.Route{}, false
	}
	family, dstLen, table, typ := data[0], int(data[1]), data[4], data[7]
	if native.Uint32(data[8:12])&unix.RTM_F_CLONED != 0 || typ != unix.RTN_UNICAST {
		return detect.Route{}, false // a cached path MTU or a local/broadcast route
	}
	r := detect.Route{Family: 4, Table: int(table), Dst: "default"}
	if family == unix.AF_INET6 {
		r.Family = 6
	}
	ok := eachAttr(data[unix.SizeofRtMsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.RTA_TABLE:
			if len(v) >= 4 {
				r.Table = int(native.Uint32(v))
			}
		case unix.RTA_DST:
			if ip, ok := netip.AddrFromSlice(v); ok && dstLen > 0 && dstLen <= ip.BitLen() {
				r.Dst = netip.PrefixFrom(ip, dstLen).String()
			}
		case unix.RTA_GATEWAY:
			if ip, ok := netip.AddrFromSlice(v); ok {
				r.Gw = ip.String()
			}
		case unix.RTA_OIF:
			if len(v) >= 4 {
				r.LinkIndex = int(native.Uint32(v))
			}
		case unix.RTA_PRIORITY:
			if len(v) >= 4 {
				r.Metric = int(native.Uint32(v))
			}
		case unix.RTA_METRICS:
			eachAttr(v, func(typ uint16, v []byte) {
				if typ == unix.RTAX_MTU && len(v) >= 4 {
					r.MTU = int(native.Uint32(v))
				}
			})
		}
	})
	return r, ok
}

// eachAttr walks netlink attributes; false when one is malformed.
func eachAttr(b []byte, fn func(typ uint16, value []byte)) bool {
	for len(b) >= unix.SizeofRtAttr {
		n := int(native.Uint16(b[0:2]))
		if n < unix.SizeofRtAttr || n > len(b) {
			return false
		}
		fn(native.Uint16(b[2:4])&^unix.NLA_F_NESTED, b[unix.SizeofRtAttr:n])
		b = b[min(len(b), (n+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
	}
	return true
}

// decodeAddr reads an RTM_*ADDR message: the link, the family and the
// address with its prefix length (IFA_LOCAL, the interface's own address,
// where IFA_ADDRESS is a point-to-point peer).
func decodeAddr(data []byte) (Addr, bool) {
	if len(data) < unix.SizeofIfAddrmsg {
		return Addr{}, false
	}
	msg := nl.DeserializeIfAddrmsg(data)
	a := Addr{LinkIndex: int(msg.Index)}
	switch msg.Family {
	case unix.AF_INET:
		a.Family = 4
	case unix.AF_INET6:
		a.Family = 6
	default:
		return Addr{}, false
	}
	var local, address []byte
	ok := eachAttr(data[unix.SizeofIfAddrmsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.IFA_LOCAL:
			local = v
		case unix.IFA_ADDRESS:
			address = v
		}
	})
	if !ok {
		return Addr{}, false
	}
	if local == nil {
		local = address
	}
	ip, ok := netip.AddrFromSlice(local)
	if !ok {
		return Addr{}, false
	}
	if int(msg.Prefixlen) > ip.BitLen() {
		return Addr{}, false
	}
	// The address itself, not its network: "172.28.5.2/20".
	a.Prefix = netip.PrefixFrom(ip, int(msg.Prefixlen)).String()
	return a, true
}

// Routes reads the routes of a table (0: every table) with one dump. The
// kernel filters it by table when asked with NETLINK_GET_STRICT_CHK (Linux
// 4.20 on), so reading wslmtu's own table costs the same with 100k routes
// elsewhere; an older kernel sends every route and they are filtered here.
func (n Netlink) Routes(table int, fn func(detect.Route)) error {
	req := nl.NewNetlinkRequest(unix.RTM_GETROUTE, unix.NLM_F_DUMP)
	msg := &nl.RtMsg{RtMsg: unix.RtMsg{Family: unix.AF_UNSPEC}}
	if table > 0 && table < 256 {
		msg.Table = uint8(table)
	}
	req.AddData(msg)
	if table >= 256 {
		req.AddData(nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(uint32(table))))
	}
	return n.dump(req, func(m syscall.NetlinkMessage) {
		if m.Header.Type != unix.RTM_NEWROUTE || len(m.Data) < unix.SizeofRtMsg {
			return
		}
		if f := m.Data[0]; f != unix.AF_INET && f != unix.AF_INET6 {
			return // multicast (ipmr) and MPLS routes of an unspecified-family dump
		}
		r, ok := decodeRoute(m.Data)
		if ok && (table == 0 || r.Table == table) {
			fn(r)
		}
	})
}

// Addrs reads every IPv4 and IPv6 address with one dump.
func (n Netlink) Addrs(fn func(Addr)) error {
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
	return n.dump(req, func(m syscall.NetlinkMessage) {
		if m.Header.Type != unix.RTM_NEWADDR {
			return
		}
		if a, ok := decodeAddr(m.Data); ok {
			fn(a)
		}
	})
}

// ErrDumpInterrupted is a dump the kernel marked inconsistent (the table
// changed while it was read): what was delivered may miss entries, so the
// reader reads again.
var ErrDumpInterrupted = errors.New("netlink dump interrupted by a concurrent change")

// dump sends a dump request on a socket of its own in the namespace and
// hands each reply to fn as it arrives: only one receive buffer is held at
// a time, however long the dump.
func (n Netlink) dump(req *nl.NetlinkRequest, fn func(syscall.NetlinkMessage)) error {
	target := n.target()
	s, err := nl.GetNetlinkSocketAt(target, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	// Without strict checking the kernel ignores the table asked for; the
	// replies are filtered by the caller either way.
	_ = unix.SetsockoptInt(s.GetFd(), unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	if err := s.Send(req); err != nil {
		s.Close()
		return fmt.Errorf("netlink dump request: %w", err)
	}
	pid, err := s.GetPid()
	if err != nil {
		s.Close()
		return err
	}
	c, err := newConn(s)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.f.SetReadDeadline(time.Now().Add(dumpTimeout)); err != nil {
		return err
	}
	buf := make([]byte, receiveBuffer)
	interrupted := false
	for {
		msgs, err := c.receive(buf)
		if err != nil {
			return fmt.Errorf("netlink dump: %w", err)
		}
		for m := range messages(msgs) {
			if m.Header.Seq != req.Seq || m.Header.Pid != pid {
				continue
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE, unix.NLMSG_ERROR:
				var errno int32
				if len(m.Data) >= 4 {
					errno = int32(native.Uint32(m.Data[0:4]))
				}
				switch {
				case errno == 0, syscall.Errno(-errno) == unix.ENOENT:
					// ENOENT: the table asked for does not exist (yet).
				default:
					return fmt.Errorf("netlink dump: %w", syscall.Errno(-errno))
				}
				if interrupted {
					return ErrDumpInterrupted
				}
				return nil
			default:
				fn(m)
			}
		}
	}
}

// dumpTimeout bounds a dump: the kernel answers at once, so a dump that
// stalls is a kernel (or namespace) gone wrong, not a slow one.
const dumpTimeout = 10 * time.Second

var native = nl.NativeEndian()
