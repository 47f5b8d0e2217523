package probe

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/wslmtu/wslmtu/internal/netnstest"
)

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newNS creates a throwaway namespace with a unique name, removed at cleanup.
func newNS(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("wmp%s%d%04x", role, os.Getpid()%100000, rand.IntN(1<<16))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	// Without DAD, link-local addresses are usable at once: a router needs one
	// to solicit the neighbour it forwards to, and DAD would hold it back ~2s.
	run(t, "ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// veth links namespace a (interface an) to b (bn), both with mtu, and
// addresses them 10.77.<net>.1/2 and fd77:<net>::1/2.
func veth(t *testing.T, a, an, b, bn string, mtu, net int) {
	t.Helper()
	run(t, "ip", "-n", a, "link", "add", an, "mtu", fmt.Sprint(mtu), "type", "veth", "peer", "name", bn, "netns", b, "mtu", fmt.Sprint(mtu))
	run(t, "ip", "-n", a, "link", "set", an, "up")
	run(t, "ip", "-n", b, "link", "set", bn, "up")
	waitReady(t, a, an)
	waitReady(t, b, bn)
	for i, side := range [][2]string{{a, an}, {b, bn}} {
		run(t, "ip", "-n", side[0], "addr", "add", fmt.Sprintf("10.77.%d.%d/24", net, i+1), "dev", side[1])
		run(t, "ip", "-n", side[0], "addr", "add", fmt.Sprintf("fd77:%d::%d/64", net, i+1), "dev", side[1], "nodad")
	}
}

// waitReady waits until the kernel has activated the link's queueing
// discipline: until then (linkwatch runs up to a second late) every packet,
// neighbour solicitations included, goes to the "noop" qdisc and is dropped.
func waitReady(t *testing.T, ns, dev string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", ns, "link", "show", "dev", dev).CombinedOutput()
		if err == nil && strings.Contains(string(out), "state UP") && !strings.Contains(string(out), "qdisc noop") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s not ready: %s", dev, ns, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// probeIn runs Run with the socket and route lookup made inside namespace ns:
// a socket stays in the namespace it was created in.
func probeIn(t *testing.T, ns, host string, timeout time.Duration) *Result {
	t.Helper()
	var res *Result
	var err error
	func() {
		runtime.LockOSThread()
		orig, e := netns.Get()
		if e != nil {
			t.Fatal(e)
		}
		defer orig.Close()
		target, e := netns.GetFromName(ns)
		if e != nil {
			t.Fatal(e)
		}
		defer target.Close()
		if e := netns.Set(target); e != nil {
			t.Fatal(e)
		}
		defer func() {
			// A thread left in the wrong namespace must die with the goroutine.
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
		}()
		res, err = Run(context.Background(), host, Options{Config: Config{Timeout: timeout}})
	}()
	if err != nil {
		t.Fatalf("probe %s in %s: %v", host, ns, err)
	}
	t.Logf("probe %s in %s (%s, %d rounds):\n%s", host, ns, res.Elapsed.Round(time.Millisecond), res.Rounds, res)
	return res
}

// Over a plain veth, the DF maximum is the MTU minus the headers, fragments
// cross, and an address nobody holds gives "does not answer" in one round.
func TestRealVeth(t *testing.T) {
	netnstest.RequireRoot(t, "creates network namespaces")
	a, b := newNS(t, "a"), newNS(t, "b")
	veth(t, a, "a0", b, "b0", 1400, 1)
	for _, tc := range []struct {
		host    string
		payload int
	}{{"10.77.1.2", 1400 - 28}, {"fd77:1::2", 1400 - 48}} {
		t.Run(tc.host, func(t *testing.T) {
			res := probeIn(t, a, tc.host, time.Second)
			if res.MaxDFPayload != tc.payload || res.MaxDFPacket != 1400 || !res.Exact {
				t.Errorf("payload %d packet %d exact=%v, want %d/1400", res.MaxDFPayload, res.MaxDFPacket, res.Exact, tc.payload)
			}
			if res.Interface != "a0" || res.InterfaceMTU != 1400 || res.Tunnel {
				t.Errorf("route via %s mtu %d tunnel=%v, want a0 1400 no tunnel", res.Interface, res.InterfaceMTU, res.Tunnel)
			}
			if !res.FragmentsPassed || res.Verdict != VerdictOK {
				t.Errorf("fragments=%v verdict %s: %s", res.FragmentsPassed, res.Verdict, res.Message)
			}
		})
	}
	for _, host := range []string{"10.77.1.99", "fd77:1::99"} {
		t.Run("unreachable-"+host, func(t *testing.T) {
			const timeout = 300 * time.Millisecond
			res := probeIn(t, a, host, timeout)
			if res.Verdict != VerdictNoAnswer || res.Rounds != 0 || !strings.Contains(res.Message, "does not answer ICMP echo within 300ms") {
				t.Errorf("verdict %s rounds %d: %s", res.Verdict, res.Rounds, res.Message)
			}
			if res.Elapsed > 5*timeout { // generous: one round is one timeout
				t.Errorf("took %s for a %s round", res.Elapsed, timeout)
			}
		})
	}
}

// A router namespace in the middle with a smaller next link: with ICMP "too
// big" the kernel learns the path MTU (EMSGSIZE, healthy); with ICMP and
// fragments dropped it is a black hole.
func TestRealRouter(t *testing.T) {
	netnstest.RequireRoot(t, "creates network namespaces")
	for _, tc := range []struct {
		name      string
		blackHole bool
	}{{"pmtu-learned", false}, {"black-hole", true}} {
		t.Run(tc.name, func(t *testing.T) {
			a, m, b := newNS(t, "a"), newNS(t, "m"), newNS(t, "b")
			veth(t, a, "a0", m, "m0", 1500, 1)
			veth(t, m, "m1", b, "b0", 1400, 2)
			run(t, "ip", "netns", "exec", m, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
			for _, r := range [][]string{
				{a, "10.77.1.2"}, {a, "fd77:1::2"}, {b, "10.77.2.1"}, {b, "fd77:2::1"},
			} {
				run(t, "ip", "-n", r[0], "route", "add", "default", "via", r[1])
			}
			if tc.blackHole {
				rules := `table inet probetest {
	chain pre {
		type filter hook prerouting priority -450; policy accept;
		iifname "m0" ip frag-off & 0x3fff != 0 drop
		iifname "m0" exthdr frag exists drop
	}
	chain out {
		type filter hook output priority 0; policy accept;
		icmp type destination-unreachable drop
		icmpv6 type packet-too-big drop
	}
}
`
				cmd := exec.Command("ip", "netns", "exec", m, "nft", "-f", "-")
				cmd.Stdin = strings.NewReader(rules)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("nft: %v\n%s", err, out)
				}
			}
			for _, tc2 := range []struct {
				host    string
				payload int
			}{{"10.77.2.2", 1400 - 28}, {"fd77:2::2", 1400 - 48}} {
				t.Run(tc2.host, func(t *testing.T) {
					res := probeIn(t, a, tc2.host, 500*time.Millisecond)
					if res.MaxDFPayload != tc2.payload || res.MaxDFPacket != 1400 || !res.Exact {
						t.Errorf("payload %d packet %d exact=%v, want %d/1400", res.MaxDFPayload, res.MaxDFPacket, res.Exact, tc2.payload)
					}
					if tc.blackHole {
						if res.Verdict != VerdictBlackHole || res.FragmentsPassed {
							t.Errorf("verdict %s fragments=%v: %s", res.Verdict, res.FragmentsPassed, res.Message)
						}
					} else {
						if res.Verdict != VerdictOK || res.LocalLimitPacket != 1400 || !res.FragmentsPassed {
							t.Errorf("verdict %s local limit %d fragments=%v: %s", res.Verdict, res.LocalLimitPacket, res.FragmentsPassed, res.Message)
						}
					}
				})
			}
		})
	}
}

func TestIsTunnel(t *testing.T) {
	for _, tc := range []struct {
		link netlink.Link
		want bool
	}{
		{&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "tailscale0", EncapType: "none"}}, true},
		{&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "wg0"}}, true},
		{&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "utun3"}, Mode: netlink.TUNTAP_MODE_TUN}, true},
		{&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "tap0", EncapType: "ether"}, Mode: netlink.TUNTAP_MODE_TAP}, false},
		{&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "tun0", EncapType: "none"}}, true},
		{&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", EncapType: "ether"}}, false},
		{&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "vx0", EncapType: "ether"}}, true},
	} {
		if got := IsTunnel(tc.link); got != tc.want {
			t.Errorf("IsTunnel(%s %s) = %v, want %v", tc.link.Type(), tc.link.Attrs().Name, got, tc.want)
		}
	}
}
