package netwatch

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
)

// Netlink subscribes to the kernel's link, route and rule groups on one
// socket, read by one goroutine that decodes and stamps each message: one
// wake-up between the kernel and the agent, as few as a reactor can have.
type Netlink struct {
	// NS is the namespace to follow; nil follows the caller's.
	NS *netns.NsHandle
	// BufferSize is the socket's receive buffer; 0 picks 4 MiB. Tests make
	// it tiny to force ENOBUFS.
	BufferSize int
}

func (n Netlink) Subscribe(ctx context.Context) (<-chan Event, error) {
	target := netns.None()
	if n.NS != nil {
		target = *n.NS
	}
	s, err := nl.SubscribeAt(target, netns.None(), unix.NETLINK_ROUTE,
		unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE, unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_IPV6_RULE)
	if err != nil {
		return nil, fmt.Errorf("subscribing to link, route and rule changes: %w", err)
	}
	size := n.BufferSize
	if size == 0 {
		size = 4 << 20
	}
	if err := s.SetReceiveBufferSize(size, true); err != nil {
		s.Close()
		return nil, fmt.Errorf("netlink receive buffer: %w", err)
	}
	out := make(chan Event, 1024)
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		s.Close() // wakes the receive below
	}()
	go func() {
		defer close(out)
		defer close(stop)
		for {
			msgs, from, err := s.Receive()
			at := time.Now()
			if err != nil {
				if ctx.Err() == nil {
					out <- Event{At: at, Err: fmt.Errorf("netlink: %w", err)}
				}
				return
			}
			if from.Pid != nl.PidKernel {
				continue
			}
			for _, m := range msgs {
				if ev, ok := decode(m, at); ok {
					select {
					case out <- ev:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return out, nil
}

func decode(m syscall.NetlinkMessage, at time.Time) (Event, bool) {
	switch m.Header.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		l, err := netlink.LinkDeserialize(&unix.NlMsghdr{Len: m.Header.Len, Type: m.Header.Type, Flags: m.Header.Flags,
			Seq: m.Header.Seq, Pid: m.Header.Pid}, m.Data)
		if err != nil {
			return Event{}, false
		}
		link := detect.LinkOf(l)
		return Event{At: at, Link: &link, Gone: m.Header.Type == unix.RTM_DELLINK}, true
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		r, ok := decodeRoute(m.Data)
		if !ok {
			return Event{}, false
		}
		return Event{At: at, Route: &r, Gone: m.Header.Type == unix.RTM_DELROUTE}, true
	case unix.RTM_NEWRULE, unix.RTM_DELRULE:
		return Event{At: at, Rules: true}, true
	}
	return Event{}, false
}

// decodeRoute reads what detect.Route holds from an RTM_*ROUTE message;
// vishvananda/netlink keeps its route decoder private.
func decodeRoute(data []byte) (detect.Route, bool) {
	if len(data) < unix.SizeofRtMsg {
		return detect.Route{}, false
	}
	msg := nl.DeserializeRtMsg(data)
	if msg.Flags&unix.RTM_F_CLONED != 0 || msg.Type != unix.RTN_UNICAST {
		return detect.Route{}, false // a cached path MTU or a local/broadcast route
	}
	attrs, err := nl.ParseRouteAttr(data[msg.Len():])
	if err != nil {
		return detect.Route{}, false
	}
	r := detect.Route{Family: 4, Table: int(msg.Table), Dst: "default"}
	if msg.Family == unix.AF_INET6 {
		r.Family = 6
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_TABLE:
			r.Table = int(native.Uint32(a.Value))
		case unix.RTA_DST:
			r.Dst = (&net.IPNet{IP: net.IP(a.Value), Mask: net.CIDRMask(int(msg.Dst_len), 8*len(a.Value))}).String()
		case unix.RTA_GATEWAY:
			r.Gw = net.IP(a.Value).String()
		case unix.RTA_OIF:
			r.LinkIndex = int(native.Uint32(a.Value))
		case unix.RTA_PRIORITY:
			r.Metric = int(native.Uint32(a.Value))
		case unix.RTA_METRICS:
			metrics, err := nl.ParseRouteAttr(a.Value)
			if err != nil {
				continue
			}
			for _, mt := range metrics {
				if mt.Attr.Type == unix.RTAX_MTU {
					r.MTU = int(native.Uint32(mt.Value))
				}
			}
		}
	}
	if msg.Dst_len == 0 {
		r.Dst = "default"
	}
	return r, true
}

var native = nl.NativeEndian()
