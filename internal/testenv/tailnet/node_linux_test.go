package tailnet

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/testenv/logbuf"
)

// node is a real tailscaled in one of the lab's namespaces.
type node struct {
	name  string // the node's hostname in the tailnet
	netns string
	// inWSL gives tailscaled a /mnt/wsl of its own, so that it believes it
	// runs on WSL and applies its own eth0 fix at start.
	inWSL bool
	dir   string // state directory; the socket is in it
	bins  binaries
	lab   *lab.Lab
	ctl   *control
	log   *logbuf.Buffer

	proc   *exec.Cmd
	exited chan struct{}
}

func newNode(t *testing.T, w *world, name, netns string, inWSL bool) *node {
	n := &node{name: name, netns: netns, inWSL: inWSL, dir: t.TempDir(), bins: w.bins, lab: w.lab, ctl: w.ctl, log: &logbuf.Buffer{}}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("tailscaled %s log (last lines):\n%s", n.name, n.log.Tail(30))
		}
	})
	return n
}

func (n *node) socket() string { return filepath.Join(n.dir, "tailscaled.sock") }

// mountScript runs before tailscaled, in a mount namespace of its own so
// the host sees none of it: the WSL marker distro.IsWSL looks for
// (/mnt/wsl) on a fresh tmpfs when WSLMTU_LAB_WSL is set, and an empty
// resolv.conf over the host's, so no DNS setting of tailscaled can reach
// the host's file.
const mountScript = `set -e
if [ -n "$WSLMTU_LAB_WSL" ]; then
	mount -t tmpfs -o size=16k,mode=0755 wslmtu-lab /mnt
	mkdir /mnt/wsl
fi
if [ -f /etc/resolv.conf ]; then
	mount --bind "$WSLMTU_LAB_RESOLV" /etc/resolv.conf
fi
exec "$@"`

// start runs tailscaled and returns once it answers on its socket. With
// the state directory of an earlier run it reconnects as that node.
func (n *node) start(t *testing.T) {
	t.Helper()
	resolv := filepath.Join(n.dir, "resolv.conf")
	if err := os.WriteFile(resolv, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", n.netns,
		"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", mountScript, "sh",
		n.bins.tailscaled, "--tun=tailscale0", "--statedir="+n.dir, "--socket="+n.socket(),
		"--port=41641", "--no-logs-no-support")
	cmd.Env = append(os.Environ(),
		"WSLMTU_LAB_RESOLV="+resolv,
		// Else its log configuration goes to /var/lib/tailscale, logs or not.
		"TS_LOGS_DIR="+n.dir,
		"TS_NO_LOGS_NO_SUPPORT=true",
		"TS_DISABLE_PORTMAPPER=1",
		"TS_ASSUME_NETWORK_UP_FOR_TEST=1",
		"TS_PANIC_IF_HIT_MAIN_CONTROL=1",
		"TS_NETCHECK_GENERATE_204_URL="+n.ctl.URL+"/generate_204",
	)
	if n.inWSL {
		cmd.Env = append(cmd.Env, "WSLMTU_LAB_WSL=1")
	}
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if err := n.lab.StartProcess(cmd); err != nil {
		t.Fatal(err)
	}
	n.proc, n.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(n.exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := n.cli("status", "--json"); err == nil {
			return
		}
		select {
		case <-n.exited:
			t.Fatalf("tailscaled %s exited at start (%v):\n%s", n.name, cmd.ProcessState, n.log.Tail(30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tailscaled %s does not answer on %s after 20s:\n%s", n.name, n.socket(), n.log.Tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends tailscaled as systemctl stop does (SIGTERM), which removes
// tailscale0 and tailscaled's rules.
func (n *node) stop(t *testing.T) {
	t.Helper()
	if n.proc == nil {
		return
	}
	_ = n.proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
		n.kill()
		t.Fatalf("tailscaled %s still running 15s after SIGTERM", n.name)
	}
	n.proc = nil
}

func (n *node) kill() {
	if n.proc == nil {
		return
	}
	_ = n.proc.Process.Kill()
	<-n.exited
	n.proc = nil
}

// cli runs the tailscale command against this node's tailscaled.
func (n *node) cli(args ...string) (string, error) {
	cmd := exec.Command(n.bins.cli, append([]string{"--socket=" + n.socket()}, args...)...)
	cmd.Env = append(os.Environ(), "TS_LOGS_DIR="+n.dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// up joins the tailnet (or, after down, reconnects) and returns the node's
// IPv4 address in it.
func (n *node) up(t *testing.T) netip.Addr {
	t.Helper()
	if out, err := n.cli("up", "--login-server="+n.ctl.URL, "--hostname="+n.name, "--accept-dns=false", "--timeout=30s"); err != nil {
		t.Fatalf("tailscale up on %s: %v\n%s\ntailscaled:\n%s", n.name, err, out, n.log.Tail(30))
	}
	out, err := n.cli("ip", "-4")
	if err != nil {
		t.Fatalf("tailscale ip -4 on %s: %v\n%s", n.name, err, out)
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("tailscale ip -4 on %s: %q: %v", n.name, out, err)
	}
	return ip
}

// down is `tailscale down`: tailscaled stays, the tunnel goes.
func (n *node) down(t *testing.T) {
	t.Helper()
	if out, err := n.cli("down", "--accept-risk=all"); err != nil {
		t.Fatalf("tailscale down on %s: %v\n%s", n.name, err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := n.cli("status", "--json")
		if strings.Contains(out, `"BackendState": "Stopped"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tailscale down on %s: not stopped after 10s:\n%s", n.name, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDirect returns once this node reaches peer directly (through the
// NAT), not through DERP: over DERP (TCP) the fragment black hole would
// never show. It then pings through WireGuard itself (TSMP), so a
// handshake has been made on that path.
func (n *node) waitDirect(t *testing.T, peer netip.Addr) string {
	t.Helper()
	// A disco ping stops at the first direct pong, and fails if none comes.
	out, err := n.cli("ping", "--c=40", "--timeout=2s", peer.String())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if err != nil || !strings.Contains(last, " via ") || strings.Contains(last, "via DERP") {
		t.Fatalf("%s: no direct path to %s (%v):\n%s", n.name, peer, err, out)
	}
	if out, err := n.cli("ping", "--tsmp", "--c=20", "--timeout=1s", peer.String()); err != nil {
		t.Fatalf("%s: no TSMP pong from %s through WireGuard (%v):\n%s", n.name, peer, err, out)
	}
	return last
}
