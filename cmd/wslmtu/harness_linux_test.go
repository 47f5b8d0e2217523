package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// The repair harness: `wslmtu run` and wslmtu-floor (cmd/wslmtu-floor, the
// least a reactor must do), each its own process, built as shipped,
// alternating in rounds on one namespace. The harness resets eth0 to 1280
// and stamps the time before its write; the repair's time is when its own
// netlink subscription, blocked in recvfrom on a thread of its own, returns
// the RTM_NEWLINK showing 1360. Nothing spins: a poller on a 2-core machine
// takes the core a reactor would run on.
//
//	WSLMTU_HARNESS=1 go test ./cmd/wslmtu -run TestRepairHarness -v
//
// WSLMTU_HARNESS_ROUNDS and WSLMTU_HARNESS_RESETS change the 3 rounds of
// 150 resets; WSLMTU_HARNESS_AGENT names another wslmtu binary to measure;
// WSLMTU_HARNESS_FLOOR=library measures against the floor written with
// vishvananda/netlink's subscription instead of the lean one.
//
// Resets are 20 ms apart: real ones come one per Windows network change,
// and the agent treats more than 100 a second as a fight.
func TestRepairHarness(t *testing.T) {
	if os.Getenv("WSLMTU_HARNESS") == "" {
		t.Skip("a measurement, not a test: WSLMTU_HARNESS=1 go test ./cmd/wslmtu -run TestRepairHarness -v")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: it builds a network namespace")
	}
	rounds, resets := envInt("WSLMTU_HARNESS_ROUNDS", 3), envInt("WSLMTU_HARNESS_RESETS", 150)
	bin := t.TempDir()
	agentBin := os.Getenv("WSLMTU_HARNESS_AGENT") // another build to compare, e.g. an older one
	if agentBin == "" {
		agentBin = filepath.Join(bin, "wslmtu")
		goBuild(t, agentBin, ".")
	}
	goBuild(t, filepath.Join(bin, "wslmtu-floor"), "../wslmtu-floor")

	ns := netnstest.NewWSL(t, 1280, 1280)
	eth0, err := ns.Handle.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	w := watchMTU(t, ns, eth0.Attrs().Index)
	reactors := []struct {
		name  string
		start func(t *testing.T) *exec.Cmd
	}{
		{"agent", func(t *testing.T) *exec.Cmd {
			dir := t.TempDir()
			return exec.Command("ip", "netns", "exec", ns.Name, agentBin, "run", "--assume-wsl",
				"--state-dir", filepath.Join(dir, "state"), "--config", filepath.Join(dir, "wslmtu.toml"))
		}},
		{"floor", func(t *testing.T) *exec.Cmd {
			args := []string{"netns", "exec", ns.Name, filepath.Join(bin, "wslmtu-floor"), "--mtu", "1360"}
			if os.Getenv("WSLMTU_HARNESS_FLOOR") == "library" {
				args = append(args, "--library")
			}
			return exec.Command("ip", args...)
		}},
	}
	t.Logf("load average before: %s", loadavg())
	lat := map[string][]time.Duration{}
	for r := 0; r < rounds; r++ {
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0} // neither always runs on a machine warmed by the other
		}
		for _, i := range order {
			re := reactors[i]
			// Each starts from WSL's value, as the agent does after a boot.
			if err := ns.Handle.LinkSetMTU(eth0, 1280); err != nil {
				t.Fatal(err)
			}
			cmd := re.start(t)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			stop := func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }
			if !w.waitFor(1360, 5*time.Second) {
				stop()
				t.Fatalf("%s did not set eth0 to 1360 at start; its stderr:\n%s", re.name, stderr.String())
			}
			time.Sleep(300 * time.Millisecond) // its start-up work (the agent's firewall look) is not a repair
			got, err := w.measure(ns, eth0.Attrs().Index, resets)
			stop()
			if err != nil {
				t.Fatalf("%s, round %d: %v; its stderr:\n%s", re.name, r+1, err, stderr.String())
			}
			t.Logf("round %d %-5s p50 %v p99 %v", r+1, re.name, pct(got, 0.50), pct(got, 0.99))
			if os.Getenv("WSLMTU_SHOW_AGENT_LOG") != "" {
				t.Logf("%s's stderr:\n%s", re.name, stderr.String())
			}
			lat[re.name] = append(lat[re.name], got...)
		}
	}
	t.Logf("load average after: %s", loadavg())
	a, f := lat["agent"], lat["floor"]
	t.Logf("agent p50 %v p99 %v; floor p50 %v p99 %v; ratio p50 %.2f× p99 %.2f× (targets ≤ 1.25×, ≤ 1.5×)",
		pct(a, 0.50), pct(a, 0.99), pct(f, 0.50), pct(f, 0.99),
		float64(pct(a, 0.50))/float64(pct(f, 0.50)), float64(pct(a, 0.99))/float64(pct(f, 0.99)))
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// pct is the p-quantile of d (sorted in place).
func pct(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[int(float64(len(d)-1)*p)]
}

// mtuWatch is the harness's own subscription to eth0's link events.
type mtuWatch struct {
	events chan mtuEvent
}

type mtuEvent struct {
	at  time.Time
	mtu int
}

// watchMTU reads RTNLGRP_LINK in ns on a thread of its own, blocked in
// recvfrom, and stamps each of index's RTM_NEWLINK when recvfrom returns.
func watchMTU(t *testing.T, ns *netnstest.NS, index int) *mtuWatch {
	h := netnstest.NetNS(t, ns).Handle()
	s, err := nl.SubscribeAt(h, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
	if err != nil {
		t.Fatal(err)
	}
	fd := s.GetFd()
	// Closing a socket does not wake a thread blocked on it: a receive
	// timeout lets the reader see that the test is over.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200_000}); err != nil {
		t.Fatal(err)
	}
	w := &mtuWatch{events: make(chan mtuEvent, 1024)}
	quit, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(quit); <-done; s.Close() })
	go func() {
		defer close(done)
		runtime.LockOSThread()
		buf := make([]byte, 64<<10)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			at := time.Now()
			select {
			case <-quit:
				return
			default:
			}
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			if err != nil || n == 0 {
				return
			}
			for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
				l := int(native.Uint32(b[0:4]))
				if l < unix.NLMSG_HDRLEN || l > len(b) {
					break
				}
				if native.Uint16(b[4:6]) == unix.RTM_NEWLINK {
					if mtu, ok := linkMTU(b[unix.NLMSG_HDRLEN:l], index); ok {
						w.events <- mtuEvent{at, mtu}
					}
				}
				b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
			}
		}
	}()
	return w
}

var native = nl.NativeEndian()

// linkMTU is IFLA_MTU of an RTM_NEWLINK about index.
func linkMTU(data []byte, index int) (int, bool) {
	if len(data) < unix.SizeofIfInfomsg || int(int32(native.Uint32(data[4:8]))) != index {
		return 0, false
	}
	for b := data[unix.SizeofIfInfomsg:]; len(b) >= unix.SizeofRtAttr; {
		n := int(native.Uint16(b[0:2]))
		if n < unix.SizeofRtAttr || n > len(b) {
			return 0, false
		}
		if native.Uint16(b[2:4]) == unix.IFLA_MTU && n >= unix.SizeofRtAttr+4 {
			return int(native.Uint32(b[unix.SizeofRtAttr:])), true
		}
		b = b[min(len(b), (n+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
	}
	return 0, false
}

// waitFor waits for an event showing mtu.
func (w *mtuWatch) waitFor(mtu int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-w.events:
			if ev.mtu == mtu {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// measure resets eth0 to 1280 n times, 20 ms apart, and returns for each
// the time from before the resetting write to the event showing 1360.
func (w *mtuWatch) measure(ns *netnstest.NS, index, n int) ([]time.Duration, error) {
	l, err := ns.Handle.LinkByIndex(index)
	if err != nil {
		return nil, err
	}
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		for len(w.events) > 0 { // a late echo of the last round
			<-w.events
		}
		start := time.Now()
		if err := ns.Handle.LinkSetMTU(l, 1280); err != nil {
			return nil, err
		}
		deadline := time.After(2 * time.Second)
	wait:
		for {
			select {
			case ev := <-w.events:
				if ev.mtu == 1360 {
					out = append(out, ev.at.Sub(start))
					break wait
				}
			case <-deadline:
				return nil, fmt.Errorf("reset %d: eth0 not repaired within 2s", i+1)
			}
		}
		time.Sleep(20*time.Millisecond - time.Since(start))
	}
	return out, nil
}
