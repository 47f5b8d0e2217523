package netwatch

import (
	"encoding/binary"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// linkMsg is an RTM_NEWLINK's data: ifinfomsg, IFLA_IFNAME, IFLA_MTU and,
// when kind is set, IFLA_LINKINFO with IFLA_INFO_KIND.
func linkMsg(index int32, flags uint32, name string, mtu uint32, kind string) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	b = append(b, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)).Serialize()...)
	b = append(b, nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(mtu)).Serialize()...)
	if kind != "" {
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated(kind+"\x00"))
		b = append(b, info.Serialize()...)
	}
	return b
}

// deserialized is what the agent read from an event before decodeLink.
func deserialized(t *testing.T, data []byte) detect.Link {
	t.Helper()
	l, err := netlink.LinkDeserialize(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	return detect.LinkOf(l)
}

// decodeLink reads what LinkDeserialize and detect.LinkOf read, for every
// kind the agent tells apart and one it does not know.
func TestDecodeLinkAsLinkOf(t *testing.T) {
	for _, c := range []struct {
		name, kind string
		up         bool
	}{{"eth0", "", true}, {"eth0", "veth", true}, {"tailscale0", "tun", true}, {"wg0", "wireguard", false},
		{"br0", "bridge", true}, {"x0", "some-new-kind", true}} {
		flags := uint32(0)
		if c.up {
			flags = unix.IFF_UP | unix.IFF_RUNNING
		}
		data := linkMsg(7, flags, c.name, 1360, c.kind)
		got, ok := decodeLink(data, linkNames{})
		if want := deserialized(t, data); !ok || got != want {
			t.Errorf("%s (kind %q): decodeLink %+v (ok %v), LinkOf(LinkDeserialize) %+v", c.name, c.kind, got, ok, want)
		}
	}
	if _, ok := decodeLink([]byte{0, 0, 1}, linkNames{}); ok {
		t.Error("a short message decoded")
	}
}

// A link seen before costs no allocation to decode: it is on the way to
// every repair.
func TestDecodeLinkAllocates(t *testing.T) {
	data := linkMsg(2, unix.IFF_UP, "eth0", 1280, "veth")
	names := linkNames{}
	decodeLink(data, names)
	if n := testing.AllocsPerRun(100, func() { decodeLink(data, names) }); n != 0 {
		t.Errorf("decoding eth0's RTM_NEWLINK allocates %v times, want 0", n)
	}
}

// Every link the kernel lists (veth eth0, tun tailscale0, lo) decodes as
// LinkDeserialize and detect.LinkOf read it.
func TestDecodeLinkKernelMessages(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	h := netnstest.NetNS(t, ns).Handle()
	s, err := nl.GetNetlinkSocketAt(h, 0, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	if err := s.Send(req); err != nil {
		t.Fatal(err)
	}
	seen := 0
	names := linkNames{}
	for done := false; !done; {
		msgs, _, err := s.Receive()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_DONE {
				done = true
				break
			}
			if m.Header.Type != unix.RTM_NEWLINK {
				continue
			}
			got, ok := decodeLink(m.Data, names)
			if want := deserialized(t, m.Data); !ok || got != want {
				t.Errorf("decodeLink %+v (ok %v), LinkOf(LinkDeserialize) %+v", got, ok, want)
			}
			ev, ok := decode(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWLINK}, Data: m.Data}, time.Time{}, names)
			if !ok || ev.Link == nil || *ev.Link != got {
				t.Errorf("decode: %+v, want link %+v", ev, got)
			}
			seen++
		}
	}
	if seen < 3 {
		t.Errorf("%d links listed, want lo, eth0 and tailscale0", seen)
	}
}
