package netwatch

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// armedLab is eth0 at 1360 with a subscription whose reader may repair it.
type armedLab struct {
	ns      *netnstest.NS
	eth0    detect.Link
	events  <-chan Event
	repairs *Repairs
	read    uint64 // events read from the subscription
}

func newArmedLab(t *testing.T) *armedLab {
	ns := netnstest.NewWSL(t, 1360, 1280)
	// No IPv6 link-local addresses arriving later: an event the test has
	// not read would rightly stop the reader's write.
	ns.Run(t, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
	nsn := netnstest.NetNS(t, ns)
	l, err := ns.Handle.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lab := &armedLab{ns: ns, eth0: detect.LinkOf(l), repairs: &Repairs{}}
	if lab.events, err = (Netlink{NS: nsn, Repairs: lab.repairs}).Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	return lab
}

// reset sets eth0 to mtu from outside and returns the event that shows it.
func (lab *armedLab) reset(t *testing.T, mtu int) Event {
	t.Helper()
	if lab.ns.MTU(t, "eth0") == mtu {
		t.Fatalf("eth0 is at %d already: no event would show it", mtu)
	}
	lab.ns.Run(t, "ip", "link", "set", "eth0", "mtu", strconv.Itoa(mtu))
	return lab.next(t, mtu)
}

// next is the next event showing eth0 at mtu. An event of something else
// before it (the kernel's own IPv6 address work) counts as read.
func (lab *armedLab) next(t *testing.T, mtu int) Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-lab.events:
			lab.read++
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			if ev.Link != nil && ev.Link.Index == lab.eth0.Index && ev.Link.MTU == mtu {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event showing eth0 at %d within 5s", mtu)
		}
	}
}

// An armed repair is written by the reader as it reads the reset, once;
// the event says so, and the kernel holds the repaired value before the
// event is read.
func TestRepairsWrittenByTheReader(t *testing.T) {
	lab := newArmedLab(t)
	lab.repairs.Arm(lab.read, []Repair{{Link: lab.eth0, From: 1280}})
	ev := lab.reset(t, 1280)
	if ev.Wrote != 1360 || ev.WriteErr != nil {
		t.Fatalf("the reset's event: wrote %d (%v), want 1360", ev.Wrote, ev.WriteErr)
	}
	if got := lab.ns.MTU(t, "eth0"); got != 1360 {
		t.Fatalf("eth0 %d after the reader's write, want 1360", got)
	}
	if echo := lab.next(t, 1360); echo.Wrote != 0 {
		t.Errorf("the write's echo was written too: %d", echo.Wrote)
	}
	// Used once: the next reset is the caller's.
	if ev := lab.reset(t, 1280); ev.Wrote != 0 {
		t.Errorf("a second reset was written (%d) without a new arm", ev.Wrote)
	}
	if got := lab.ns.MTU(t, "eth0"); got != 1280 {
		t.Errorf("eth0 %d, want the reset's 1280", got)
	}
}

// The reader leaves a reset to its caller when the caller has not read
// every event it handed on, when the link is not as the caller knew it,
// or after Disarm.
func TestRepairsNotWritten(t *testing.T) {
	lab := newArmedLab(t)
	down := lab.eth0
	down.Up = !down.Up
	renamed := lab.eth0
	renamed.Name = "eth1"
	for _, c := range []struct {
		name string
		arm  func()
		mtu  int
	}{
		{"an event not read yet", func() { lab.repairs.Arm(lab.read+1, []Repair{{Link: lab.eth0, From: 1280}}) }, 1280},
		{"another value", func() { lab.repairs.Arm(lab.read, []Repair{{Link: lab.eth0, From: 1300}}) }, 1280},
		{"up or down", func() { lab.repairs.Arm(lab.read, []Repair{{Link: down, From: 1280}}) }, 1280},
		{"another name", func() { lab.repairs.Arm(lab.read, []Repair{{Link: renamed, From: 1280}}) }, 1280},
		{"disarmed", func() {
			lab.repairs.Arm(lab.read, []Repair{{Link: lab.eth0, From: 1280}})
			lab.repairs.Disarm()
		}, 1280},
	} {
		if lab.ns.MTU(t, "eth0") != 1360 {
			lab.reset(t, 1360)
		}
		c.arm()
		if ev := lab.reset(t, c.mtu); ev.Wrote != 0 {
			t.Errorf("%s: the reader wrote %d", c.name, ev.Wrote)
		}
		if got := lab.ns.MTU(t, "eth0"); got != c.mtu {
			t.Errorf("%s: eth0 %d, want %d", c.name, got, c.mtu)
		}
	}
}

// A write the kernel refuses is reported with the event, which is handed
// on all the same.
func TestRepairsWriteRefused(t *testing.T) {
	lab := newArmedLab(t)
	bad := lab.eth0
	bad.MTU = 1 << 20 // above any link's maximum
	lab.repairs.Arm(lab.read, []Repair{{Link: bad, From: 1280}})
	ev := lab.reset(t, 1280)
	if ev.Wrote != bad.MTU || ev.WriteErr == nil {
		t.Fatalf("wrote %d, error %v; want %d refused", ev.Wrote, ev.WriteErr, bad.MTU)
	}
	if got := lab.ns.MTU(t, "eth0"); got != 1280 {
		t.Errorf("eth0 %d, want 1280", got)
	}
}

// The reader's write allocates nothing: it is on the way to every repair
// it makes.
func TestRepairsWriteAllocates(t *testing.T) {
	ns := netnstest.NewWSL(t, 1360, 1280)
	nsh := netnstest.NetNS(t, ns).Handle()
	s, err := nl.SubscribeAt(nsh, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReader(s, nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	l, err := ns.Handle.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	eth0 := detect.LinkOf(l)
	reset := eth0
	reset.MTU = 1280
	p := &Repairs{}
	links := []Repair{{Link: eth0, From: 1280}}
	if n := testing.AllocsPerRun(50, func() {
		p.Arm(0, links)
		ev := Event{Link: &reset}
		p.try(&ev, 0, r)
		if ev.Wrote != 1360 || ev.WriteErr != nil {
			t.Fatalf("wrote %d: %v", ev.Wrote, ev.WriteErr)
		}
	}); n != 0 {
		t.Errorf("arming and writing a repair allocates %v times, want 0", n)
	}
}

// Cancelling the subscription wakes the reader blocked in recvfrom (a
// close alone would not): the channel closes and both sockets are closed.
func TestNetlinkCancelWakesTheReader(t *testing.T) {
	ns := netnstest.NewWSL(t, 1360, 1280)
	nsn := netnstest.NetNS(t, ns)
	before := openFDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := (Netlink{NS: nsn, Repairs: &Repairs{}}).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, fd := range openFDs(t) {
		if !slices.Contains(before, fd) {
			ours = append(ours, fd)
		}
	}
	if len(ours) != 2 {
		t.Fatalf("sockets %v opened by Subscribe, want 2 (the subscription and the request socket)", ours)
	}
	// The barrier: a thread of this process blocked in recvfrom on one of them.
	for deadline := time.Now().Add(5 * time.Second); !blockedInRecvfrom(t, ours); {
		if time.Now().After(deadline) {
			t.Fatalf("no thread blocked in recvfrom on the subscription %v within 5s", ours)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-events:
		case <-deadline:
			t.Fatal("the channel is still open 5s after cancel: the reader was not woken")
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(openFDs(t)) != len(before); {
		if time.Now().After(deadline) {
			t.Fatalf("sockets %v open after the subscription ended, want %v", openFDs(t), before)
		}
		time.Sleep(time.Millisecond)
	}
}

// openFDs are this process's open sockets, by descriptor number.
func openFDs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			fds = append(fds, e.Name())
		}
	}
	return fds
}

// blockedInRecvfrom is whether a thread of this process is in recvfrom on
// one of fds (decimal), as /proc/self/task/*/syscall shows it.
func blockedInRecvfrom(t *testing.T, fds []string) bool {
	t.Helper()
	tasks, _ := filepath.Glob("/proc/self/task/*/syscall")
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 || f[0] != strconv.Itoa(unix.SYS_RECVFROM) {
			continue
		}
		if fd, err := strconv.ParseInt(strings.TrimPrefix(f[1], "0x"), 16, 64); err == nil && slices.Contains(fds, strconv.FormatInt(fd, 10)) {
			return true
		}
	}
	return false
}
