package tailnet

import (
	"context"
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"tailscale.com/derp/derpserver"
	"tailscale.com/net/stun/stuntest"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"

	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/testenv/logbuf"
)

// control is the tailnet's coordination: tailscale's test control server,
// and a DERP and a STUN server so that the nodes learn their endpoints as
// they would on the internet. All three listen on the peer's LAN address,
// which WSL reaches only through Hyper-V's NAT: WSL's node learns its NAT
// mapping from STUN, and the nodes then talk directly, through the NAT.
type control struct {
	URL    string
	server *testcontrol.Server
	logs   *logbuf.Buffer
}

func startControl(t *testing.T, l *lab.Lab) *control {
	t.Helper()
	c := &control{logs: &logbuf.Buffer{}}
	logf := func(format string, args ...any) { c.logs.Printf(format, args...) }
	ip := l.PeerLANIP()

	d := derpserver.New(key.NewNode(), logf)
	derp := httptest.NewUnstartedServer(derpserver.Handler(d))
	derp.Listener.Close()
	derp.Listener = listenPeer(t, l, ip)
	derp.Config.ErrorLog = log.New(c.logs, "derp: ", 0)
	derp.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	derp.StartTLS()
	stunAddr, stunClose := stuntest.ServeWithPacketListener(t, peerPackets{l})

	c.server = &testcontrol.Server{
		Logf: func(format string, args ...any) { c.logs.Printf("control: "+format, args...) },
		DERPMap: &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{1: {
			RegionID:   1,
			RegionCode: "lab",
			Nodes: []*tailcfg.DERPNode{{
				Name:             "1a",
				RegionID:         1,
				HostName:         ip.String(),
				IPv4:             ip.String(),
				IPv6:             "none",
				STUNPort:         stunAddr.Port,
				DERPPort:         derp.Listener.Addr().(*net.TCPAddr).Port,
				InsecureForTests: true,
				STUNTestIP:       ip.String(),
			}},
		}}},
		AllNodesSameUser: true,
		AllOnline:        true,
	}
	hs := httptest.NewUnstartedServer(c.server)
	hs.Listener.Close()
	hs.Listener = listenPeer(t, l, ip)
	hs.Config.ErrorLog = log.New(c.logs, "control http: ", 0)
	hs.Start()
	c.server.HTTPTestServer = hs
	c.URL = hs.URL

	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		derp.CloseClientConnections()
		derp.Close()
		d.Close()
		stunClose()
		if t.Failed() {
			t.Logf("control, DERP and STUN log (last lines):\n%s", c.logs.Tail(40))
		}
	})
	return c
}

// listenPeer opens a TCP listener on ip in the peer's namespace.
func listenPeer(t *testing.T, l *lab.Lab, ip netip.Addr) net.Listener {
	t.Helper()
	var ln net.Listener
	err := l.DoPeer(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", l.PeerNetNS(), err)
	}
	return ln
}

// peerPackets opens the STUN server's socket on the peer's LAN address.
type peerPackets struct{ l *lab.Lab }

func (p peerPackets) ListenPacket(_ context.Context, network, _ string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := p.l.DoPeer(func() (err error) {
		pc, err = net.ListenPacket(network, netip.AddrPortFrom(p.l.PeerLANIP(), 0).String())
		return err
	})
	return pc, err
}
