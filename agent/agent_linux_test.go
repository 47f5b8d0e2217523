package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// A netlink socket whose receive buffer overflows reports ENOBUFS, and
// vishvananda/netlink then closes the subscription channel. The agent must
// subscribe again, resync, and keep repairing.
func TestAgentSurvivesNetlinkOverflow(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	cfg := config.Default()
	cfg.AssumeWSL = true
	stateDir := t.TempDir()
	runInNamespace(t, ns, Options{
		Config: cfg,
		Host:   fix.HostAt(ns.Handle, detect.HostSources(), stateDir),
		// The smallest buffer the kernel allows holds one or two
		// messages, so a burst overflows it at once.
		ReceiveBufferSize: 1,
	})
	waitMTU := func(want int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for ns.MTU(t, "eth0") != want {
			if time.Now().After(deadline) {
				t.Fatalf("eth0 %d, want %d", ns.MTU(t, "eth0"), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitMTU(1360)

	l, _ := ns.Handle.LinkByName("eth0")
	for i := 0; i < 2000; i++ {
		ns.Handle.LinkSetMTU(l, 1280+i%2)
	}
	waitMTU(1360)
	status, err := agentstatus.Read(stateDir)
	deadline := time.Now().Add(3 * time.Second)
	for err == nil && status.Resubscribe == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		status, err = agentstatus.Read(stateDir)
	}
	if err != nil || status.Resubscribe == 0 {
		t.Fatalf("no resubscription recorded after the overflow: %+v %v", status.Counters, err)
	}

	// Still listening: a single reset is repaired.
	ns.Handle.LinkSetMTU(l, 1280)
	waitMTU(1360)
	t.Logf("resubscribed %d times", status.Resubscribe)
}

// Netfilter changes emit no netlink event, so the agent checks its MSS rules
// on a timer: a rule deleted by hand comes back within one interval.
func TestAgentRestoresDeletedMSSRule(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	cfg := config.Default()
	cfg.AssumeWSL = true
	cfg.MTUStrategy = config.StrategyOff
	cfg.MSSClamp = true
	runInNamespace(t, ns, Options{
		Config:            cfg,
		Host:              fix.HostAt(ns.Handle, detect.HostSources(), t.TempDir()),
		MSSResyncInterval: 100 * time.Millisecond,
	})
	rule := "-A WSLMTU-IN -i tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1161:65535 -j TCPMSS --set-mss 1160"
	// The firewall has a worker of its own: the rules follow the start shortly.
	for deadline := time.Now().Add(3 * time.Second); !strings.Contains(ns.Run(t, "iptables", "-t", "mangle", "-S"), rule); {
		if time.Now().After(deadline) {
			t.Fatalf("the clamp rule is missing after start:\n%s", ns.Run(t, "iptables", "-t", "mangle", "-S"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	ns.Run(t, "iptables", append([]string{"-t", "mangle", "-D"}, strings.Fields(strings.TrimPrefix(rule, "-A "))...)...)
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(ns.Run(t, "iptables", "-t", "mangle", "-S"), rule) {
		if time.Now().After(deadline) {
			t.Fatal("the deleted rule did not come back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := ns.MTU(t, "eth0"); got != 1280 {
		t.Errorf("mtu_strategy off changed eth0 to %d", got)
	}
}

// Our MSS chains went only with `fix`. Now a fresh agent
// without clamping removes chains an earlier run left (with or without a
// record), and a reload that turns clamping off removes them too.
func TestAgentRemovesMSSChainsWhenClampingIsOff(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	mangle := func() string { return ns.Run(t, "iptables", "-t", "mangle", "-S") }
	waitChains := func(want bool, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for strings.Contains(mangle(), "WSLMTU-IN") != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: chains present = %v, want %v:\n%s", what, !want, want, mangle())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Leftovers without a record: a crash, a lost state directory.
	ns.Run(t, "iptables", "-t", "mangle", "-N", "WSLMTU-IN")
	ns.Run(t, "iptables", "-t", "mangle", "-N", "WSLMTU-OUT")
	ns.Run(t, "iptables", "-t", "mangle", "-I", "PREROUTING", "1", "-p", "tcp", "-j", "WSLMTU-IN")
	ns.Run(t, "iptables", "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "-j", "ACCEPT") // somebody else's
	cfg := config.Default()
	cfg.AssumeWSL = true
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "wslmtu.toml")
	os.WriteFile(cfgPath, []byte("mss_clamp = false\n"), 0o644)
	runInNamespace(t, ns, Options{Config: cfg, ConfigPath: cfgPath, ConfigSettle: 20 * time.Millisecond,
		Overlay: func(c config.Config) (config.Config, error) { c.AssumeWSL = true; return c, c.Validate() },
		Host:    fix.HostAt(ns.Handle, detect.HostSources(), filepath.Join(dir, "state"))})
	waitChains(false, "a fresh agent without clamping")
	if !strings.Contains(mangle(), "-A OUTPUT -p udp -j ACCEPT") {
		t.Errorf("somebody else's rule went too:\n%s", mangle())
	}
	os.WriteFile(cfgPath, []byte("mss_clamp = true\n"), 0o644)
	waitChains(true, "clamping turned on by a reload")
	os.WriteFile(cfgPath, []byte("mss_clamp = false\n"), 0o644)
	waitChains(false, "clamping turned off by a reload")
}

// An outer interface not named eth* (renamed, with the
// default route on it) is followed: a reset of it is repaired.
func TestAgentFollowsARenamedOuterInterface(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	cfg := config.Default()
	cfg.AssumeWSL = true
	runInNamespace(t, ns, Options{Config: cfg, Host: fix.HostAt(ns.Handle, detect.HostSources(), t.TempDir())})
	waitFor := func(link string, want int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for ns.MTU(t, link) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s %d, want %d", link, ns.MTU(t, link), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("eth0", 1360)
	ns.Run(t, "ip", "link", "set", "eth0", "down")
	ns.Run(t, "ip", "link", "set", "eth0", "name", "wan0")
	ns.Run(t, "ip", "link", "set", "wan0", "up")
	ns.Run(t, "ip", "route", "replace", "default", "via", "172.28.0.1", "dev", "wan0")
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < 3; i++ {
		ns.Run(t, "ip", "link", "set", "wan0", "mtu", "1280")
		waitFor("wan0", 1360)
	}
}

// runInNamespace runs the agent until the test ends, on a thread inside ns:
// iptables runs as a child of that thread and inherits its namespace, so the
// host's firewall is never touched. It returns once the agent is ready.
func runInNamespace(t *testing.T, ns *netnstest.NS, opts Options) {
	t.Helper()
	nsn := netnstest.NetNS(t, ns)
	ready := make(chan struct{})
	opts.Netns, opts.Ready = nsn, ready
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Notify = func(string) {}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		if err := nsn.Enter(); err != nil { // for good: the thread ends with the goroutine
			done <- err
			return
		}
		done <- Run(ctx, opts)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("agent not ready within 5s")
	}
}
