package netwatch

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
)

// Repairs are MTU repairs a subscription's reader writes back itself, as
// it reads the reset: the write leaves on the thread the kernel woke, with
// no goroutine, channel or netlink library between the event and it. The
// caller decides what may be written (Arm) and hears of every write in the
// event that caused it (Event.Wrote); it must Disarm before it changes
// anything the decision rests on.
//
// An arm holds only while the reader has handed on exactly the events the
// caller had read when it armed: an event the caller has not seen yet may
// change its mind, so the reader then leaves the repair to it. An arm is
// used once.
type Repairs struct {
	mu        sync.Mutex
	delivered uint64
	links     []Repair
}

// Repair is one link the reader may put back.
type Repair struct {
	// Link is the link as the caller knows it; its MTU is the value
	// written back. An event for it that differs in anything but the MTU
	// is not repaired.
	Link detect.Link
	// From is the MTU that is put back.
	From int
}

// Arm lets the reader write links, until Disarm or the first write, while
// it has handed on exactly delivered events on the current subscription.
func (p *Repairs) Arm(delivered uint64, links []Repair) {
	p.mu.Lock()
	p.delivered = delivered
	p.links = append(p.links[:0], links...)
	p.mu.Unlock()
}

// Disarm returns once no write is under way, and none starts until the
// next Arm.
func (p *Repairs) Disarm() {
	p.mu.Lock()
	p.links = p.links[:0]
	p.mu.Unlock()
}

// try writes the armed repair ev asks for, and notes it in ev.
func (p *Repairs) try(ev *Event, sent uint64, w *reader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sent != p.delivered {
		return
	}
	l := ev.Link
	for _, r := range p.links {
		if r.Link.Index != l.Index {
			continue
		}
		if l.MTU == r.From && l.Name == r.Link.Name && l.Up == r.Link.Up && l.Kind == r.Link.Kind {
			ev.Wrote, ev.WriteErr = r.Link.MTU, w.setMTU(l.Index, r.Link.MTU)
			p.links = p.links[:0]
			// The repair is in force. Whatever the change woke (a program
			// that waits for the MTU, the repair harness) runs before the
			// caller logs, counts and plans: on a two-core VM that work,
			// right after the write, is what delayed them most (the
			// harness: agent p50 1.4–1.6× the floor with a sched_yield
			// here, 1.1× with this pause). Later events wait in the
			// socket meanwhile; none is lost.
			time.Sleep(handOnAfterRepair)
		}
		return
	}
}

// handOnAfterRepair is how long the reader holds the event of a repair it
// wrote before handing it on.
const handOnAfterRepair = time.Millisecond

// reader is a subscription's two sockets, both blocking: sub receives the
// groups, req writes repairs and reads their acks (and wakes sub on close).
type reader struct {
	sub, req int
	subPid   uint32
	closing  atomic.Bool
	seq      uint32
	msg      []byte // RTM_SETLINK with IFLA_MTU, built once
	ack      []byte
}

var errClosed = errors.New("subscription closed")

// newReader takes over s (closed; a blocking duplicate stays open) and
// opens the request socket in target.
func newReader(s *nl.NetlinkSocket, target netns.NsHandle) (*reader, error) {
	sub, err := unix.Dup(s.GetFd())
	s.Close()
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	r := &reader{sub: sub, req: -1}
	fail := func(err error) (*reader, error) {
		r.close()
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	unix.CloseOnExec(sub)
	if err := unix.SetNonblock(sub, false); err != nil {
		return fail(err)
	}
	sa, err := unix.Getsockname(sub)
	if err != nil {
		return fail(err)
	}
	nsa, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return fail(fmt.Errorf("not a netlink socket"))
	}
	r.subPid = nsa.Pid
	rs, err := nl.GetNetlinkSocketAt(target, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return fail(err)
	}
	r.req, err = unix.Dup(rs.GetFd())
	rs.Close()
	if err != nil {
		return fail(err)
	}
	unix.CloseOnExec(r.req)
	if err := unix.SetNonblock(r.req, false); err != nil {
		return fail(err)
	}
	// The kernel acks a write before sendto returns; the timeout is for a
	// kernel gone wrong, and costs nothing while nothing is written.
	if err := unix.SetsockoptTimeval(r.req, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: int64(dumpTimeout.Seconds())}); err != nil {
		return fail(err)
	}
	r.msg = make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg+unix.SizeofRtAttr+4)
	native.PutUint32(r.msg[0:], uint32(len(r.msg)))
	native.PutUint16(r.msg[4:], unix.RTM_SETLINK)
	native.PutUint16(r.msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	attr := r.msg[unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg:]
	native.PutUint16(attr[0:], unix.SizeofRtAttr+4)
	native.PutUint16(attr[2:], unix.IFLA_MTU)
	r.ack = make([]byte, 4096)
	return r, nil
}

// receive blocks until the kernel sends a batch, and returns it in buf;
// errClosed once wake was called.
func (r *reader) receive(buf []byte) ([]byte, error) {
	for {
		var from unix.RawSockaddrNetlink
		fromLen := uint32(unix.SizeofSockaddrNetlink)
		n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(r.sub), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0,
			uintptr(unsafe.Pointer(&from)), uintptr(unsafe.Pointer(&fromLen)))
		if r.closing.Load() {
			return nil, errClosed
		}
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return nil, e
		case from.Pid != nl.PidKernel:
			continue
		}
		return buf[:n], nil
	}
}

// wake unblocks receive for good: closing the socket would not.
func (r *reader) wake() {
	r.closing.Store(true)
	var noop [unix.NLMSG_HDRLEN]byte
	native.PutUint32(noop[0:], unix.NLMSG_HDRLEN)
	native.PutUint16(noop[4:], unix.NLMSG_NOOP)
	// A full queue refuses it, but then the reader is not blocked.
	_ = unix.Sendto(r.req, noop[:], unix.MSG_DONTWAIT, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: r.subPid})
}

func (r *reader) close() {
	unix.Close(r.sub)
	if r.req >= 0 {
		unix.Close(r.req)
	}
}

var kernelAddr = unix.RawSockaddrNetlink{Family: unix.AF_NETLINK}

// setMTU writes a link's MTU with the prebuilt RTM_SETLINK and reads the
// kernel's ack: what a plan's write does, without building a request.
func (r *reader) setMTU(index, mtu int) error {
	r.seq++
	native.PutUint32(r.msg[8:], r.seq)
	native.PutUint32(r.msg[unix.NLMSG_HDRLEN+4:], uint32(int32(index)))
	native.PutUint32(r.msg[len(r.msg)-4:], uint32(mtu))
	for {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(r.req), uintptr(unsafe.Pointer(&r.msg[0])), uintptr(len(r.msg)), 0,
			uintptr(unsafe.Pointer(&kernelAddr)), unix.SizeofSockaddrNetlink)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		break
	}
	for {
		n, err := unix.Read(r.req, r.ack)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for m := range messages(r.ack[:n]) {
			if m.Header.Type != unix.NLMSG_ERROR || m.Header.Seq != r.seq || len(m.Data) < 4 {
				continue
			}
			if errno := int32(native.Uint32(m.Data[0:4])); errno != 0 {
				return syscall.Errno(-errno)
			}
			return nil
		}
	}
}
