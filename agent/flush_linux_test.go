package agent

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// scopeConfig is the agent's default config with tailscale0's packets named
// by a [[tunnel]] table (the namespace's tailscale0 is a plain tun, and its
// name alone is no evidence).
func scopeConfig() config.Config {
	cfg := config.Default()
	cfg.AssumeWSL = true
	cfg.TunnelSettings = []config.TunnelSpec{{Name: "tailscale0", FwMark: "0x80000/0xff0000"}}
	return cfg
}

// scopeDiff says what of the tunnel scope is missing in ns: eth0 raised,
// the main default route at mtu 1280, its copy in table 5200, the rules.
func scopeDiff(ns *netnstest.NS) string {
	var diffs []string
	eth0, err := ns.Handle.LinkByName("eth0")
	if err != nil {
		return err.Error()
	}
	if mtu := eth0.Attrs().MTU; mtu != 1360 {
		diffs = append(diffs, fmt.Sprintf("eth0 mtu %d", mtu))
	}
	for _, c := range []struct {
		table, mtu int
	}{{unix.RT_TABLE_MAIN, 1280}, {5200, 0}} {
		routes, err := ns.Handle.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: c.table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err.Error()
		}
		ok := slices.ContainsFunc(routes, func(r netlink.Route) bool {
			return detect.IsDefaultRoute(r.Dst) && r.Gw.Equal(net.ParseIP("172.28.0.1")) && r.LinkIndex == eth0.Attrs().Index && r.MTU == c.mtu
		})
		if !ok {
			diffs = append(diffs, fmt.Sprintf("no default route via 172.28.0.1 dev eth0 mtu %d in table %d", c.mtu, c.table))
		}
	}
	rules, err := ns.Handle.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return err.Error()
	}
	n := 0
	for _, r := range rules {
		if (r.Priority == 5190 || r.Priority == 5200) && r.Mark == 0x80000 {
			n++
		}
	}
	if n != 2 {
		diffs = append(diffs, fmt.Sprintf("%d of our 2 rules", n))
	}
	return strings.Join(diffs, "; ")
}

func waitScope(t *testing.T, ns *netnstest.NS, when string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		diff := scopeDiff(ns)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after 3s: %s\n%s", when, diff, ns.Run(t, "ip", "route", "show", "table", "all"))
		}
		time.Sleep(time.Millisecond)
	}
}

// On real netlink, with the agent on its defaults: WSL
// deletes and adds eth0's address (mirrored, consomme), and the kernel
// flushes every IPv4 route through eth0 without a route event, table 5200
// included; WSL then adds its default route again, without the mtu. The
// same after eth0 goes down and up, and after it disappears and comes back
// as a new link (mirrored mode hot-plugs NICs). Each time the whole scope
// comes back: table 5200, the default route's mtu, the rules.
func TestAgentRestoresTheScopeAfterASilentFlush(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	runInNamespace(t, ns, Options{Config: scopeConfig(), Host: fix.HostAt(ns.Handle, detect.HostSources(), t.TempDir())})
	waitScope(t, ns, "start")
	for _, step := range []struct {
		name string
		do   func()
	}{
		{"eth0's address deleted and added again", func() {
			ns.Run(t, "ip", "addr", "del", "172.28.0.2/20", "dev", "eth0")
			ns.Run(t, "ip", "addr", "add", "172.28.0.2/20", "dev", "eth0")
			ns.Run(t, "ip", "route", "add", "default", "via", "172.28.0.1", "dev", "eth0")
		}},
		{"eth0 down and up", func() {
			ns.Run(t, "ip", "link", "set", "eth0", "down")
			ns.Run(t, "ip", "link", "set", "eth0", "up")
			ns.Run(t, "ip", "route", "add", "default", "via", "172.28.0.1", "dev", "eth0")
		}},
		{"eth0 gone and back", func() {
			ns.Run(t, "ip", "link", "del", "eth0")
			ns.AddEth0(t, 1280)
		}},
	} {
		step.do()
		waitScope(t, ns, step.name)
	}
}

// TestMeasureSilentFlushRepair measures, over 100 silent flushes, the time
// from WSL's new default route (the event after which the scope can be
// restored) to the kernel reporting both the table-5200 route and the
// route's mtu back. A measurement, not a test:
//
//	WSLMTU_MEASURE=1 go test ./agent -run TestMeasureSilentFlushRepair -v
func TestMeasureSilentFlushRepair(t *testing.T) {
	if os.Getenv("WSLMTU_MEASURE") == "" {
		t.Skip("a measurement; run with WSLMTU_MEASURE=1 -run TestMeasureSilentFlushRepair -v")
	}
	ns := netnstest.NewWSL(t, 1280, 1280)
	runInNamespace(t, ns, Options{Config: scopeConfig(), Host: fix.HostAt(ns.Handle, detect.HostSources(), t.TempDir())})
	waitScope(t, ns, "start")
	nsh := netnstest.NetNS(t, ns).Handle()
	updates, done := make(chan netlink.RouteUpdate, 4096), make(chan struct{})
	defer close(done)
	if err := netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{Namespace: &nsh}); err != nil {
		t.Fatal(err)
	}
	eth0, err := ns.Handle.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("172.28.0.2/20")
	gw := net.ParseIP("172.28.0.1")
	var lat []time.Duration
	for i := 0; i < 100; i++ {
		if err := ns.Handle.AddrDel(eth0, addr); err != nil {
			t.Fatal(err)
		}
		if err := ns.Handle.AddrAdd(eth0, addr); err != nil {
			t.Fatal(err)
		}
		// Below the fight limiter's rate, and the address events served.
		time.Sleep(20 * time.Millisecond)
		for len(updates) > 0 {
			<-updates
		}
		start := time.Now()
		if err := ns.Handle.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw}); err != nil {
			t.Fatal(err)
		}
		table, mtu := false, false
		deadline := time.After(3 * time.Second)
		for !table || !mtu {
			select {
			case u := <-updates:
				if u.Type != unix.RTM_NEWROUTE || !detect.IsDefaultRoute(u.Dst) || u.Family != netlink.FAMILY_V4 {
					continue
				}
				table = table || u.Table == 5200
				mtu = mtu || (u.Table == unix.RT_TABLE_MAIN && u.MTU == 1280)
			case <-deadline:
				t.Fatalf("flush %d: not restored within 3s: %s", i, scopeDiff(ns))
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("silent flush → scope restored, %d flushes: p50 %v, p99 %v, max %v", len(lat),
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
}
