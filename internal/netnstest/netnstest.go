// Package netnstest gives root tests a throwaway network namespace shaped
// like a WSL2 distro: a veth eth0 holding the default route and a tun
// tailscale0, both at 1280 unless told otherwise.
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

// RequireRoot skips the test when not run as root, saying what needs root
// and how to run it.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
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
// default MTU, then its own MTU, then up.
func (ns *NS) AddTunnel(t testing.TB, mtu int) {
	t.Helper()
	ns.Run(t, "ip", "tuntap", "add", "tailscale0", "mode", "tun")
	ns.Run(t, "ip", "link", "set", "tailscale0", "mtu", fmt.Sprint(mtu))
	ns.Run(t, "ip", "link", "set", "tailscale0", "up")
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

// Handle opens the namespace for netlink subscriptions; closed with the test.
func Handle(t testing.TB, ns *NS) netns.NsHandle {
	t.Helper()
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}
