package lab

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// TestExternalTunnelLeavesTheTunnelToTheCaller: with ExternalTunnel the lab
// starts no node and has no tailscale0; the caller can listen in the peer's
// namespace, the processes it starts through the lab die when the lab
// closes, and Transfers move the page WSL→peer by GET and PUT.
func TestExternalTunnelLeavesTheTunnelToTheCaller(t *testing.T) {
	t.Parallel()
	netnstest.RequireRoot(t, "creates network namespaces")
	l, err := New(Options{ExternalTunnel: true, CorporateVPN: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if pids := l.NodePIDs(); len(pids) != 0 {
		t.Errorf("NodePIDs() = %v, want none", pids)
	}
	if mtu := l.TunnelMTU(); mtu != 0 {
		t.Errorf("tailscale0 exists in WSL (mtu %d)", mtu)
	}

	err = l.DoPeer(func() error {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(l.PeerLANIP(), 0).String())
		if err == nil {
			ln.Close()
		}
		return err
	})
	if err != nil {
		t.Errorf("listen on the peer's LAN address inside DoPeer: %v", err)
	}

	// The LAN is no tunnel, but from WSL it crosses the NAT like one; the
	// peer cannot reach WSL's private address, so only WSL's requests.
	checks := l.Transfers("lan0", netip.MustParseAddr("172.24.0.2"), l.PeerLANIP())
	for _, c := range checks[2:] {
		r := c(t.Context())
		if !r.OK || !strings.Contains(r.Check, "WSL→peer over lan0") {
			t.Errorf("want ok WSL→peer over lan0, got %s", r)
		}
	}

	cmd := exec.Command("ip", "netns", "exec", l.PeerNetNS(), "sleep", "60")
	if err := l.StartProcess(cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("the process started through the lab ended with %v, want killed", err)
		}
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		t.Error("the process started through the lab outlived Close by 5s")
	}
	if err := l.StartProcess(exec.Command("true")); !errors.Is(err, errClosed) {
		t.Errorf("StartProcess after Close = %v, want %v", err, errClosed)
	}
}
