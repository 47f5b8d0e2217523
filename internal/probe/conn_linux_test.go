package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/ns"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
	"github.com/wslmtu/wslmtu/internal/tunnel"
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

// runIn runs Run with the socket and route lookup made inside namespace
// name: a socket stays in the namespace it was created in.
func runIn(t *testing.T, name, host string, timeout time.Duration) (res *Result, err error) {
	t.Helper()
	target, e := ns.Open("/var/run/netns/" + name)
	if e != nil {
		t.Fatal(e)
	}
	defer target.Close()
	e = target.Do(func() error {
		res, err = Run(context.Background(), host, config.Default(), Options{Config: Config{Timeout: timeout}})
		return nil
	})
	if e != nil {
		t.Fatal(e)
	}
	return res, err
}

// probeIn is runIn where the probe must measure.
func probeIn(t *testing.T, ns, host string, timeout time.Duration) *Result {
	t.Helper()
	res, err := runIn(t, ns, host, timeout)
	if err != nil {
		t.Fatalf("probe %s in %s: %v", host, ns, err)
	}
	t.Logf("probe %s in %s (%s, %d rounds):\n%s", host, ns, res.Elapsed.Round(time.Millisecond), res.Rounds, res)
	return res
}

// probeErrIn is runIn where the probe must refuse.
func probeErrIn(t *testing.T, ns, host string) error {
	t.Helper()
	res, err := runIn(t, ns, host, time.Second)
	if err == nil {
		t.Errorf("probe %s in %s measured instead of refusing:\n%s", host, ns, res)
	}
	return err
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

// The probe's tunnels are detect's, under the config: its patterns and
// [[tunnel]] tables, and kernel WireGuard devices whatever their name, never
// the outer interface; a tun device or vxlan outside the patterns is not one
// (the old prefix list called every tun a tunnel). The kind comes along, and
// the outer interface beneath.
func TestTunnelTargetFromDetect(t *testing.T) {
	links := []detect.Link{
		{Name: "lo", Index: 1, Kind: "device", Up: true},
		{Name: "eth0", Index: 2, MTU: 1280, Kind: "veth", Up: true},
		{Name: "tailscale0", Index: 3, MTU: 1280, Kind: "tun", Up: true},
		{Name: "wg1", Index: 4, MTU: 1420, Kind: "tun", Up: true},
		{Name: "peer7", Index: 5, MTU: 1420, Kind: "wireguard", Up: true},
		{Name: "utun3", Index: 6, MTU: 1500, Kind: "tun", Up: true},
		{Name: "vx0", Index: 7, MTU: 1450, Kind: "vxlan", Up: true},
		{Name: "zt3jnkd6ic", Index: 8, MTU: 2800, Kind: "tun", Up: true},
		{Name: "gre1", Index: 9, MTU: 1476, Kind: "gre", Up: true},
	}
	routes := []detect.Route{{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.24.0.1", LinkIndex: 2}}
	cfg := config.Default()
	cfg.TunnelSettings = []config.TunnelSpec{{Name: "gre1", Kind: tunnel.Other, Overhead: 24}}
	st, err := detect.Derive(detect.Inputs{Snapshot: detect.Snapshot{Links: links, Routes: routes}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		index    int
		want     bool
		wantKind tunnel.Kind
	}{
		{1, false, ""}, {2, false, ""},
		{3, true, tunnel.WireGuard}, {4, true, tunnel.WireGuard}, {5, true, tunnel.WireGuard},
		{6, false, ""}, {7, false, ""},
		{8, true, tunnel.ZeroTier}, {9, true, tunnel.Other},
	} {
		var tg Target
		tunnelTarget(&tg, st, tc.index)
		name := links[tc.index-1].Name
		if tg.Tunnel != tc.want || tg.Spec.Kind != tc.wantKind {
			t.Errorf("%s: tunnel %v kind %q, want %v %q", name, tg.Tunnel, tg.Spec.Kind, tc.want, tc.wantKind)
		}
		if tc.want && (tg.Outer != "eth0" || tg.OuterMTU != 1280) {
			t.Errorf("%s: beneath %q %d, want eth0 1280", name, tg.Outer, tg.OuterMTU)
		}
	}
	var gre Target
	tunnelTarget(&gre, st, 9)
	if gre.Spec.Overhead != 24 {
		t.Errorf("gre1's [[tunnel]] overhead not taken: %+v", gre.Spec)
	}
}

// Bad input is refused before any socket is opened (so without root), with
// ErrBadHost or ErrBadTimeout and the value named.
func TestRunRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		host    string
		timeout time.Duration
		family  int
		want    error
		says    string
	}{
		{"::", 0, 0, ErrBadHost, ":: is the unspecified address"},
		{"0.0.0.0", 0, 0, ErrBadHost, "0.0.0.0 is the unspecified address"},
		{"::ffff:0.0.0.0", 0, 0, ErrBadHost, "::ffff:0.0.0.0 is the unspecified address"},
		{"0.1.2.3", 0, 0, ErrBadHost, "0.1.2.3 is in 0.0.0.0/8"},
		{"224.0.0.1", 0, 0, ErrBadHost, "224.0.0.1 is a multicast address"},
		{"239.255.255.250", 0, 0, ErrBadHost, "239.255.255.250 is a multicast address"},
		{"ff02::1", 0, 0, ErrBadHost, "ff02::1 is a multicast address"},
		{"255.255.255.255", 0, 0, ErrBadHost, "255.255.255.255 is the broadcast address"},
		{"fe80::1", 0, 0, ErrBadHost, "fe80::1 is link-local without a zone: name the interface, e.g. fe80::1%eth0"},
		{"fe80::1%wslmtu-nosuch", 0, 0, ErrBadHost, `no interface "wslmtu-nosuch"`},
		{"10.0.0.1", 0, 6, ErrBadHost, "10.0.0.1 is not an IPv6 address"},
		{"", 0, 0, ErrBadHost, "empty host name"},
		{"127.0.0.1", time.Nanosecond, 0, ErrBadTimeout, "bad timeout 1ns: a round waits from 10ms to 30s"},
		{"127.0.0.1", -time.Second, 0, ErrBadTimeout, "bad timeout -1s"},
		{"127.0.0.1", time.Hour, 0, ErrBadTimeout, "bad timeout 1h0m0s"},
	} {
		res, err := Run(context.Background(), tc.host, config.Default(), Options{Config: Config{Timeout: tc.timeout}, Family: tc.family})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Run(%q, timeout %s) = %v, %v; want %v saying %q", tc.host, tc.timeout, res, err, tc.want, tc.says)
		}
	}
}

// The broadcast address of the route's subnet is only known from the route:
// the kernel gives it type broadcast. A link-local address with its zone is
// probed through that interface.
func TestRunSubnetBroadcastAndZone(t *testing.T) {
	netnstest.RequireRoot(t, "creates network namespaces")
	a, b := newNS(t, "a"), newNS(t, "b")
	veth(t, a, "a0", b, "b0", 1400, 1)
	err := probeErrIn(t, a, "10.77.1.255")
	if !errors.Is(err, ErrBadHost) || !strings.Contains(err.Error(), "10.77.1.255 is the broadcast address of a0's subnet") {
		t.Errorf("subnet broadcast: %v", err)
	}
	out, err := exec.Command("ip", "-n", b, "-6", "-o", "addr", "show", "dev", "b0", "scope", "link").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out)) // 2: b0    inet6 fe80::…/64 scope link …
	if len(f) < 4 {
		t.Fatalf("no link-local address on b0: %q", out)
	}
	ll := strings.Split(f[3], "/")[0]
	res := probeIn(t, a, ll+"%a0", time.Second)
	if res.Interface != "a0" || res.MaxDFPacket != 1400 || res.Verdict != VerdictOK {
		t.Errorf("link-local %s%%a0: via %s, packet %d, verdict %s", ll, res.Interface, res.MaxDFPacket, res.Verdict)
	}
}
