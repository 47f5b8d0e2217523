package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// UnitOnlyEnv, set to 1, skips every root test also as root: mutation
// testing reruns a package's tests once per mutant and uses it to run only
// the fast ones (see docs/development.md).
const UnitOnlyEnv = "WSLMTU_TEST_UNIT_ONLY"

// RequireRoot skips the test when not run as root, saying what needs root
// and how to run it.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(UnitOnlyEnv) == "1" {
		t.Skipf("root test skipped (%s=1): %s", UnitOnlyEnv, why)
	}
	if os.Geteuid() != 0 {
		t.Skipf("needs root: %s (run: sudo go test ./...)", why)
	}
}

// NS is a named network namespace removed when the test ends.
type NS struct {
	Name   string
	Handle *netlink.Handle
}

// New makes an empty namespace with a unique name, so parallel tests and
// parallel test runs never clash and the host's interfaces are never touched.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t, "creates network namespaces")
	b := make([]byte, 4)
	rand.Read(b)
	name := "wslmtu-t-" + hex.EncodeToString(b)
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	nsh, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return &NS{Name: name, Handle: h}
}

// NewWSL makes a namespace with eth0 (veth, default route) and tailscale0 (tun).
func NewWSL(t testing.TB, ethMTU, tunnelMTU int) *NS {
	t.Helper()
	ns := New(t)
	ns.AddEth0(t, ethMTU)
	ns.AddTunnel(t, tunnelMTU)
	return ns
}

// AddTunnel creates tailscale0 as tailscaled does: a tun at the kernel's
// default MTU, then its own MTU, then up, then tailscaled's policy rules
// (the evidence that its packets carry tailscaled's mark).
func (ns *NS) AddTunnel(t testing.TB, mtu int) {
	t.Helper()
	ns.AddTunnelUnmarked(t, mtu)
	ns.AddTailscaledRules(t)
}

// AddTunnelUnmarked creates tailscale0 without tailscaled's rules: a tun
// whose packets nothing identifies.
func (ns *NS) AddTunnelUnmarked(t testing.TB, mtu int) {
	t.Helper()
	ns.Run(t, "ip", "tuntap", "add", "tailscale0", "mode", "tun")
	ns.Run(t, "ip", "link", "set", "tailscale0", "mtu", fmt.Sprint(mtu))
	ns.Run(t, "ip", "link", "set", "tailscale0", "up")
}

// AddTailscaledRules adds the rules tailscaled installs for both families
// (tailscale's wgengine/router/osrouter): its mark at 5210, 5230 and 5250,
// its table 52 at 5270.
func (ns *NS) AddTailscaledRules(t testing.TB) {
	t.Helper()
	for _, family := range []string{"-4", "-6"} {
		// tailscaled replaces its rules on a restart: so does a second call.
		for _, pref := range []string{"5210", "5230", "5250", "5270"} {
			_ = exec.Command("ip", "netns", "exec", ns.Name, "ip", family, "rule", "del", "pref", pref).Run()
		}
		ns.Run(t, "ip", family, "rule", "add", "pref", "5210", "fwmark", "0x80000/0xff0000", "table", "main")
		ns.Run(t, "ip", family, "rule", "add", "pref", "5230", "fwmark", "0x80000/0xff0000", "table", "default")
		ns.Run(t, "ip", family, "rule", "add", "pref", "5250", "fwmark", "0x80000/0xff0000", "type", "unreachable")
		ns.Run(t, "ip", family, "rule", "add", "pref", "5270", "table", "52")
	}
}

// AddEth0 creates eth0 as WSL would: a veth with an address and the default route.
// Both ends stay inside the namespace.
func (ns *NS) AddEth0(t testing.TB, mtu int) {
	t.Helper()
	ns.Run(t, "ip", "link", "add", "eth0", "mtu", fmt.Sprint(mtu), "type", "veth", "peer", "name", "hyperv0", "mtu", "1500")
	ns.Run(t, "ip", "addr", "add", "172.28.0.2/20", "dev", "eth0")
	ns.Run(t, "ip", "addr", "add", "172.28.0.1/32", "dev", "hyperv0")
	ns.Run(t, "ip", "link", "set", "hyperv0", "up")
	ns.Run(t, "ip", "link", "set", "eth0", "up")
	ns.Run(t, "ip", "route", "add", "default", "via", "172.28.0.1", "dev", "eth0")
}

// Run runs a command inside the namespace and fails the test on error.
func (ns *NS) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// MTU reads an interface's MTU inside the namespace.
func (ns *NS) MTU(t testing.TB, link string) int {
	t.Helper()
	l, err := ns.Handle.LinkByName(link)
	if err != nil {
		t.Fatalf("%s: %v", link, err)
	}
	return l.Attrs().MTU
}

// Run runs a command and fails the test with its output on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
