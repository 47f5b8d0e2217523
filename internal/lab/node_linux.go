package lab

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/wslmtu/wslmtu/detect"
)

// Environment switches that turn the current binary into a WireGuard node.
// A node must be its own process: its tun fd and UDP sockets belong to the
// namespace the process runs in, and Go cannot move a whole running process
// into another network namespace (setns only moves one thread).
const (
	envNode = "WSLMTU_LAB_NODE" // tun name; presence selects node mode
	envMTU  = "WSLMTU_LAB_MTU"
	envUAPI = "WSLMTU_LAB_UAPI" // wireguard-go UAPI "set" text
	// envSocket makes the node answer wgctrl's UAPI requests on a unix
	// socket at this path: /var/run/wireguard/NAME.sock, as wireguard-go's
	// own command does, or a lab-private path (see privateSocket).
	envSocket = "WSLMTU_LAB_SOCKET"
)

// nodeReady is the line a node prints on stdout once its device is up.
const nodeReady = "wslmtu-lab-node-ready"

func init() {
	name := os.Getenv(envNode)
	if name == "" {
		return
	}
	if err := runNode(name, os.Getenv(envMTU), os.Getenv(envUAPI), os.Getenv(envSocket)); err != nil {
		fmt.Fprintf(os.Stderr, "wslmtu lab node %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runNode runs a wireguard-go device on a new tun until SIGTERM/SIGINT,
// with a UAPI socket at socket when it is set.
func runNode(name, mtuText, uapi string, socket string) error {
	mtu, err := strconv.Atoi(mtuText)
	if err != nil {
		return fmt.Errorf("bad %s %q: %w", envMTU, mtuText, err)
	}
	tdev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return fmt.Errorf("create tun %s: %w", name, err)
	}
	// wireguard-go's NewLogger writes to stdout, which carries only the
	// ready line here: a handshake error logged before it (a peer whose
	// address family is not routed yet) would read as a failed start.
	logger := &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf:   log.New(os.Stderr, "ERROR: ("+name+") ", log.Ldate|log.Ltime).Printf,
	}
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), logger)
	defer dev.Close()
	if err := dev.IpcSet(uapi); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	if err := dev.Up(); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if socket != "" {
		// Listening before "ready", so the socket is there before the
		// lab brings the interface up, as with wireguard-go and wg-quick.
		ln, err := listenUAPI(socket, dev)
		if err != nil {
			return err
		}
		defer ln.Close()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println(nodeReady)
	select {
	case <-sig:
	case <-dev.Wait():
	}
	return nil
}

// listenUAPI serves wgctrl's (and wg's) requests on a UAPI socket at path.
func listenUAPI(path string, dev *device.Device) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	_ = os.Remove(path) // a crashed node's
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("UAPI listen on %s: %w", path, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	return ln, nil
}

// wgKey is a Curve25519 key pair in the hex form the UAPI expects.
type wgKey struct {
	private, public string
}

func newWGKey() (wgKey, error) {
	var priv [32]byte
	if _, err := rand.Read(priv[:]); err != nil {
		return wgKey{}, err
	}
	// Clamping as in RFC 7748; wireguard-go clamps too, but the public key
	// must be derived from the same clamped scalar.
	priv[0] &= 248
	priv[31] = (priv[31] & 127) | 64
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return wgKey{}, err
	}
	return wgKey{private: hex.EncodeToString(priv[:]), public: hex.EncodeToString(pub)}, nil
}

// nodeConfig is everything a node needs besides its tun name and MTU.
type nodeConfig struct {
	privateKey string
	listenPort int
	peerPublic string
	endpoint   string // host:port, empty when the peer is learnt from handshakes
	keepalive  int    // seconds, 0 for none
	allowedIPs []string
	// fwmark marks the node's UDP sockets, as tailscaled marks its own
	// with 0x80000; 0 for none.
	fwmark uint32
}

// uapi renders the config in wireguard-go's UAPI "set" format.
func (c nodeConfig) uapi() string {
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\nlisten_port=%d\n", c.privateKey, c.listenPort)
	if c.fwmark != 0 {
		fmt.Fprintf(&b, "fwmark=%d\n", c.fwmark)
	}
	b.WriteString("replace_peers=true\n")
	fmt.Fprintf(&b, "public_key=%s\n", c.peerPublic)
	if c.endpoint != "" {
		fmt.Fprintf(&b, "endpoint=%s\n", c.endpoint)
	}
	if c.keepalive > 0 {
		fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", c.keepalive)
	}
	b.WriteString("replace_allowed_ips=true\n")
	for _, a := range c.allowedIPs {
		fmt.Fprintf(&b, "allowed_ip=%s\n", a)
	}
	return b.String()
}

// node is a running WireGuard node process.
type node struct {
	name   string
	netns  string
	cmd    *exec.Cmd
	stderr *tailBuffer
	ready  chan error    // the first line of output, checked
	done   chan struct{} // closed once cmd.Wait has returned
	// socket is the node's UAPI socket, removed when it is killed (a
	// killed node cannot remove it itself); "" for none.
	socket string
}

// startNode re-executes the current binary inside netns (through
// `ip netns exec`, which execs in place so the recorded PID is the node).
// It returns once the process runs; waitReady waits for its device.
func startNode(netns, tunName string, mtu int, cfg nodeConfig, uapi bool) (*node, error) {
	socket := ""
	if uapi {
		socket = uapiSocket(netns, tunName)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command("ip", "netns", "exec", netns, self)
	cmd.Env = append(os.Environ(),
		envNode+"="+tunName,
		envMTU+"="+strconv.Itoa(mtu),
		envUAPI+"="+cfg.uapi(),
	)
	if socket != "" {
		cmd.Env = append(cmd.Env, envSocket+"="+socket)
	}
	// Pdeathsig survives the exec of ip and of the node (neither is setuid),
	// so a crashed parent does not leave nodes behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	n := &node{name: tunName, netns: netns, cmd: cmd, stderr: &tailBuffer{max: 4096},
		ready: make(chan error, 1), done: make(chan struct{})}
	n.socket = socket
	cmd.Stderr = n.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node %s in %s: %w", tunName, netns, err)
	}
	go func() {
		_ = cmd.Wait()
		close(n.done)
	}()
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != nodeReady {
			err = fmt.Errorf("unexpected output %q", line)
		}
		n.ready <- err
		// Keep draining so a chatty node never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return n, nil
}

// waitReady waits until the node reports its tun and device are up, and
// kills it if it does not.
func (n *node) waitReady(timeout time.Duration) error {
	var err error
	select {
	case err = <-n.ready:
	case <-time.After(timeout):
		err = fmt.Errorf("not ready after %v", timeout)
	}
	if err != nil {
		n.kill()
		return fmt.Errorf("node %s in %s: %v: %s", n.name, n.netns, err, strings.TrimSpace(n.stderr.String()))
	}
	return nil
}

func (n *node) pid() int { return n.cmd.Process.Pid }

// kill stops the node and waits for it, so its tun is gone on return.
func (n *node) kill() {
	_ = n.cmd.Process.Kill()
	<-n.done
	if n.socket != "" {
		_ = os.Remove(n.socket)
	}
}

// tailBuffer keeps the last max bytes written, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// privateDir holds the UAPI sockets of the lab's tailscale0 nodes. wgctrl
// finds a userspace device by name in /var/run/wireguard, one directory for
// every namespace: a wireguard-go tailscale0 there would answer for the
// tailscale0 of every other test on the machine. Lab.Sources reads it here.
const privateDir = "/run/wslmtu-lab"

// uapiSocket is where a node of netns answers UAPI requests: the shared
// directory for names no other test uses, a private one for tailscale0.
func uapiSocket(netns, tunName string) string {
	if tunName == TunnelName {
		return filepath.Join(privateDir, netns+"-"+tunName+".sock")
	}
	return filepath.Join(uapiDir, tunName+".sock")
}

// readUAPI asks a wireguard-go device on its UAPI socket for its listen
// port and fwmark (the "get=1" request of wireguard-go's ipc protocol).
func readUAPI(path string) (detect.WireGuardDevice, bool) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return detect.WireGuardDevice{}, false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "get=1\n\n"); err != nil {
		return detect.WireGuardDevice{}, false
	}
	var dev detect.WireGuardDevice
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		key, value, _ := strings.Cut(sc.Text(), "=")
		switch key {
		case "":
			return dev, false
		case "listen_port":
			dev.ListenPort, _ = strconv.Atoi(value)
		case "fwmark":
			m, _ := strconv.ParseUint(value, 0, 32)
			dev.FwMark = uint32(m)
		case "errno":
			return dev, value == "0"
		}
	}
	return dev, false
}
