package lab

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os/exec"
	"syscall"
)

// What a caller that runs its own tunnel (Options.ExternalTunnel) needs:
// the peer's namespace to run its node and servers in, a way to start
// processes that die with the lab, and the transfers over its tunnel.

// PeerNetNS is the name of the peer's namespace (for `ip netns exec`).
func (l *Lab) PeerNetNS() string { return l.peer.name }

// DoPeer runs fn on a thread inside the peer's namespace, so that the
// sockets fn opens (say, a control server's listener) live there. Goroutines
// fn starts run outside it.
func (l *Lab) DoPeer(fn func() error) error { return l.peer.ns.Do(fn) }

// PeerLANIP is the peer's address on the LAN behind Hyper-V's NAT: what WSL
// reaches through the NAT, so a server listening there sees WSL's traffic
// as the NAT rewrote it, as a server on the internet would.
func (l *Lab) PeerLANIP() netip.Addr { return peerLAN4.Addr() }

// StartProcess starts cmd from the lab's spawner thread with SIGKILL as
// its parent-death signal, so the process dies when the lab closes or the
// test process dies, even if the caller never gets to kill it. cmd should
// enter its namespace itself (`ip netns exec NAME ...`).
func (l *Lab) StartProcess(cmd *exec.Cmd) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	var err error
	l.spawn(func() { err = cmd.Start() })
	if err != nil {
		return fmt.Errorf("lab: start %s: %w", cmd.Path, err)
	}
	// Close kills it too: Pdeathsig waits for the spawner thread to exit,
	// which a loaded machine can delay by seconds.
	l.started = append(l.started, cmd.Process)
	return nil
}

// Transfers are the 55 kB transfers over the caller's tunnel between WSL
// at wslIP and the peer at peerIP: a GET and a PUT by the peer to a server
// in WSL, and a GET and a PUT by WSL to a server in the peer. Each check is
// named METHOD client→server. The page crosses WSL→peer, the direction
// Hyper-V breaks, in the peer's GET and WSL's PUT. The other two carry it
// peer→WSL, which Hyper-V leaves alone; the lab's eth0 refuses single
// frames above its MTU but not GSO batches (see Lab), so while eth0 is too
// small for the tunnel those two may cross or not.
func (l *Lab) Transfers(tunnel string, wslIP, peerIP netip.Addr) []func(context.Context) Result {
	name := func(method, from, to string) string {
		return fmt.Sprintf("%s %s→%s over %s", method, from, to, tunnel)
	}
	return []func(context.Context) Result{
		func(ctx context.Context) Result {
			return l.fetch(ctx, name(http.MethodGet, "peer", "WSL"), l.wsl, l.peer, wslIP)
		},
		func(ctx context.Context) Result {
			return l.send(ctx, name(http.MethodPut, "peer", "WSL"), http.MethodPut, l.peer, l.wsl, wslIP)
		},
		func(ctx context.Context) Result {
			return l.fetch(ctx, name(http.MethodGet, "WSL", "peer"), l.peer, l.wsl, peerIP)
		},
		func(ctx context.Context) Result {
			return l.send(ctx, name(http.MethodPut, "WSL", "peer"), http.MethodPut, l.wsl, l.peer, peerIP)
		},
	}
}
