package lab

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// Tunnel is one WireGuard tunnel between the lab's WSL and its peer: a
// wireguard-go node on each side, the WSL one behind eth0.
type Tunnel struct {
	l                 *Lab
	name, peerName    string
	mtu, peerMTU      int // MTUs at start
	peerPort          int
	fwmark            uint32 // on the WSL node's sockets; 0 for none
	uapi              bool   // the WSL node answers wgctrl on a UAPI socket
	wslKey, peerKey   wgKey
	wsl4, wsl6        netip.Prefix
	peer4, peer6      netip.Prefix
	port              int   // the WSL node's listen port; guarded by l.mu
	wslNode, peerNode *node // guarded by l.mu
}

func (l *Lab) newTunnel(name, peerName string, mtu, peerMTU, port, peerPort int, addrs [4]netip.Prefix) (*Tunnel, error) {
	t := &Tunnel{l: l, name: name, peerName: peerName, mtu: mtu, peerMTU: peerMTU, port: port, peerPort: peerPort,
		wsl4: addrs[0], wsl6: addrs[1], peer4: addrs[2], peer6: addrs[3]}
	var err error
	if t.wslKey, err = newWGKey(); err != nil {
		return nil, err
	}
	if t.peerKey, err = newWGKey(); err != nil {
		return nil, err
	}
	return t, nil
}

// Name is the tunnel's interface in WSL.
func (t *Tunnel) Name() string { return t.name }

// MTU is the tunnel interface's MTU now, or 0 if it is missing.
func (t *Tunnel) MTU() int {
	mtu, _ := t.l.linkMTU(t.name)
	return mtu
}

// PeerIP is the peer's address inside the tunnel.
func (t *Tunnel) PeerIP(v6 bool) netip.Addr {
	if v6 {
		return t.peer6.Addr()
	}
	return t.peer4.Addr()
}

// WSLIP is WSL's address inside the tunnel.
func (t *Tunnel) WSLIP(v6 bool) netip.Addr {
	if v6 {
		return t.wsl6.Addr()
	}
	return t.wsl4.Addr()
}

func (t *Tunnel) wslConfig(port int) nodeConfig {
	ep := netip.AddrPortFrom(peerLAN4.Addr(), uint16(t.peerPort))
	if t.l.opts.IPv6Underlay {
		ep = netip.AddrPortFrom(peerLAN6.Addr(), uint16(t.peerPort))
	}
	// WSL is behind NAT, so it must initiate and keep the mapping alive.
	return nodeConfig{
		fwmark:     t.fwmark,
		privateKey: t.wslKey.private,
		listenPort: port,
		peerPublic: t.peerKey.public,
		endpoint:   ep.String(),
		keepalive:  keepalive,
		allowedIPs: []string{t.peer4.Masked().String(), t.peer6.Masked().String()},
	}
}

func (t *Tunnel) peerConfig() nodeConfig {
	return nodeConfig{
		privateKey: t.peerKey.private,
		listenPort: t.peerPort,
		peerPublic: t.wslKey.public,
		allowedIPs: []string{netip.PrefixFrom(t.wsl4.Addr(), 32).String(), netip.PrefixFrom(t.wsl6.Addr(), 128).String()},
	}
}

// startPeer starts the tunnel's node in the peer namespace.
func (l *Lab) startPeer(t *Tunnel) error {
	n, err := l.startTunnel(l.peer, t.peerName, t.peerMTU, t.peerConfig(), false, t.peer4, t.peer6)
	l.mu.Lock()
	t.peerNode = n
	l.mu.Unlock()
	return err
}

// startWSL starts the tunnel's node in WSL; l.mu must be held.
func (l *Lab) startWSL(t *Tunnel, mtu, port int) error {
	n, err := l.startTunnel(l.wsl, t.name, mtu, t.wslConfig(port), t.uapi, t.wsl4, t.wsl6)
	t.wslNode = n
	if err != nil {
		return err
	}
	t.port = port
	if t.tailscaled() {
		return l.addTailscaledRules(t)
	}
	return nil
}

// tailscaled says whether the tunnel is tailscaled's tailscale0, which
// adds its own rules.
func (t *Tunnel) tailscaled() bool { return t == t.l.ts && t.l.opts.Tailscale == TailscaleMarked }

// Restart kills the tunnel's WSL node and starts a new one whose interface
// comes back at mtu with its addresses, listening on port (0: the same
// port), as tailscaled or wg-quick do on a reconnect. It returns once
// traffic crosses the tunnel again.
func (t *Tunnel) Restart(mtu, port int) error {
	if err := checkMTU("tunnel MTU", mtu); err != nil {
		return err
	}
	if port < 0 || port > 65535 {
		return fmt.Errorf("lab: port %d out of range 0..65535", port)
	}
	l := t.l
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	if t.wslNode != nil {
		if t.tailscaled() {
			l.delTailscaledRules()
		}
		t.wslNode.kill()
		t.wslNode = nil
	}
	if port == 0 {
		port = t.port
	}
	err := l.startWSL(t, mtu, port)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return t.wait()
}

// wait returns once a small ping crosses the tunnel, which also means the
// handshake is done and hyperv's NAT has learnt the mapping.
func (t *Tunnel) wait() error {
	deadline := time.Now().Add(tunnelUp)
	var last Result
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		last = t.l.ping(ctx, t.peer4.Addr(), 56, false)
		cancel()
		if last.OK {
			return nil
		}
	}
	return fmt.Errorf("lab: tunnel %s %s→%s not up after %v: %s; node stderr: %s",
		t.name, t.l.wsl.name, t.l.peer.name, tunnelUp, last, t.l.nodeStderr())
}

// Download fetches a 55 kB page served inside WSL from the peer, over the
// tunnel: the data flows WSL→peer, the direction Hyper-V breaks.
func (t *Tunnel) Download(ctx context.Context) Result {
	return t.l.fetch(ctx, "download "+t.name, t.l.wsl, t.l.peer, t.wsl4.Addr())
}

// Upload POSTs 55 kB from WSL to a server in the peer, over the tunnel.
func (t *Tunnel) Upload(ctx context.Context) Result {
	return t.l.post(ctx, "upload "+t.name, t.l.wsl, t.l.peer, t.peer4.Addr())
}
