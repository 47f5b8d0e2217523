package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/statefile"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// Regression tests for "the agent never does harm", through the
// CLI as users run it, in a throwaway namespace shaped like WSL. Each names
// the item it covers.

// linkState is every link's MTU and every address, route and rule: what a
// command must leave alone when it refuses. IPv6 link-local addresses and
// their routes are left out: the kernel adds them by itself, on its own
// time, after the links come up.
func linkState(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	all := ns.Run(t, "ip", "-o", "link") + ns.Run(t, "ip", "-o", "addr") +
		ns.Run(t, "ip", "route", "show", "table", "all") + ns.Run(t, "ip", "-6", "route", "show", "table", "all") +
		ns.Run(t, "ip", "rule") + ns.Run(t, "ip", "-6", "rule")
	var kept []string
	for _, line := range strings.Split(all, "\n") {
		if !strings.Contains(line, "fe80") && !strings.Contains(line, "ff00::/8") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// Item 2: a tunnel pattern that selects lo or the outer interface is refused
// with exit 2, naming the pattern and the interface, and nothing changes —
// however often it is run. Item 10: --outer-interface naming a tunnel or lo
// likewise.
func TestHarmPatternsAndOuterInterfaceRefused(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	ns.Run(t, "ip", "-6", "addr", "add", "fd00:1::2/64", "dev", "eth0", "nodad")
	dir := t.TempDir()
	before := linkState(t, ns)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"fix", "--tunnels", "*", "--mtu-strategy", "lower-tunnel"}, `tunnels: "*" selects lo, the loopback interface`},
		{[]string{"fix", "--tunnels", "eth0"}, `tunnels: "eth0" selects eth0, the outer interface`},
		{[]string{"fix", "--tunnels", "eth*", "--mtu-strategy", "lower-tunnel"}, `tunnels: "eth*" selects eth0, the outer interface`},
		{[]string{"run", "--tunnels", "eth*"}, `tunnels: "eth*" selects eth0, the outer interface`},
		{[]string{"fix", "--outer-interface", "tailscale0"}, `--outer-interface: "tailscale0" is a tunnel`},
		{[]string{"fix", "--outer-interface", "lo"}, `--outer-interface: "lo" is the loopback interface`},
		{[]string{"status", "--tunnels", "e*"}, `"e*" selects eth0`},
	} {
		for i := 0; i < 3; i++ {
			r := wslmtu(t, ns, dir, append(tt.args, "--assume-wsl")...)
			if r.code != exitUsage || !strings.Contains(r.out, tt.want) {
				t.Fatalf("wslmtu %s: exit %d\n%s\nwant exit 2 and %q", strings.Join(tt.args, " "), r.code, r.out, tt.want)
			}
		}
	}
	if after := linkState(t, ns); after != before {
		t.Errorf("a refused command changed the host:\n%s\nwant\n%s", after, before)
	}
}

// Item 3: revert undoes only values that are still wslmtu's. Item 10: with
// the record lost while eth0 is raised, revert says so and lists the MTUs.
func TestHarmRevertOnlyWhatIsStillOurs(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	dir := t.TempDir()
	if r := wslmtu(t, ns, dir, "fix", "--assume-wsl", "--outer-scope", "all"); r.code != 0 {
		t.Fatalf("fix: %d\n%s", r.code, r.out)
	}
	ns.Run(t, "ip", "link", "set", "eth0", "mtu", "1500")
	r := wslmtu(t, ns, dir, "revert")
	if r.code != 0 || !strings.Contains(r.out, "eth0: mtu 1500 is not the 1360 wslmtu wrote: left alone") || ns.MTU(t, "eth0") != 1500 {
		t.Errorf("revert after the user set 1500 (exit %d, eth0 %d):\n%s", r.code, ns.MTU(t, "eth0"), r.out)
	}

	if r := wslmtu(t, ns, dir, "fix", "--assume-wsl", "--outer-scope", "all", "--max-outer-mtu", "1500"); r.code != 0 {
		t.Fatalf("fix: %d\n%s", r.code, r.out)
	}
	ns.Run(t, "ip", "link", "set", "eth0", "mtu", "1280")
	wslmtu(t, ns, dir, "fix", "--assume-wsl", "--outer-scope", "all")
	os.Remove(filepath.Join(dir, "state", "revert.json"))
	r = wslmtu(t, ns, dir, "revert")
	if r.code != 0 || !strings.Contains(r.out, "there is no revert record in") || !strings.Contains(r.out, "eth0 1360") {
		t.Errorf("revert without a record:\n%s", r.out)
	}
}

// Item 9: config and state files must be bounded regular files; a FIFO, a
// device or a dangling symlink is an error at once. Item 10: a damaged
// record stops fix before any change, and fix does not print the change
// as made.
func TestHarmFilesThatAreNotFiles(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	cfg := filepath.Join(dir, "wslmtu.toml")
	before := linkState(t, ns)

	if err := syscall.Mkfifo(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := wslmtu(t, ns, dir, "fix", "--assume-wsl")
	if r.code != exitUsage || !strings.Contains(r.out, cfg+": "+cfg+" is not a regular file (a FIFO)") || time.Since(start) > 5*time.Second {
		t.Errorf("a FIFO as the config: exit %d after %v\n%s", r.code, time.Since(start), r.out)
	}
	os.Remove(cfg)
	os.Symlink("/dev/zero", cfg)
	if r := wslmtu(t, ns, dir, "status", "--assume-wsl"); r.code != exitUsage || !strings.Contains(r.out, "a character device") {
		t.Errorf("/dev/zero as the config: exit %d\n%s", r.code, r.out)
	}
	os.Remove(cfg)
	os.Symlink(filepath.Join(dir, "gone.toml"), cfg)
	if r := wslmtu(t, ns, dir, "fix", "--assume-wsl"); r.code != exitUsage || !strings.Contains(r.out, "which does not exist") {
		t.Errorf("a dangling config symlink: exit %d\n%s", r.code, r.out)
	}
	os.Remove(cfg)

	record := filepath.Join(dir, "state", "revert.json")
	os.Symlink("/dev/zero", record)
	start = time.Now()
	r = wslmtu(t, ns, dir, "revert")
	if r.code != exitFailure || !strings.Contains(r.out, "is damaged") || time.Since(start) > 5*time.Second {
		t.Errorf("revert.json → /dev/zero: exit %d after %v\n%s", r.code, time.Since(start), r.out)
	}
	os.Remove(record)
	os.WriteFile(record, []byte(`{"version":1}`), 0o644)
	r = wslmtu(t, ns, dir, "fix", "--assume-wsl")
	if r.code != exitFailure || !strings.Contains(r.out, `version 1 without "original_mtu"`) ||
		!strings.Contains(r.out, "not done: eth0: mtu 1280 → 1360") {
		t.Errorf("fix with a damaged record: exit %d\n%s", r.code, r.out)
	}
	if after := linkState(t, ns); after != before {
		t.Errorf("changed the host:\n%s", after)
	}
}

// Item 10: a held lock makes fix say what it waits for, instead of blocking
// silently, and it goes on once the lock is free.
func TestHarmFixSaysWhatItWaitsFor(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.MkdirAll(state, 0o755)
	holder := exec.Command("flock", filepath.Join(state, statefile.LinksLock), "sleep", "1.5")
	if err := holder.Start(); err != nil {
		t.Skipf("needs flock(1): %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	waitLockHeld(t, state, statefile.LinksLock)
	r := wslmtu(t, ns, dir, "fix", "--assume-wsl")
	if r.code != 0 || !strings.Contains(r.out, "wslmtu: waiting for pid") || !strings.Contains(r.out, "which holds the lock in "+state) {
		t.Errorf("fix behind a held lock: exit %d\n%s", r.code, r.out)
	}
	if got := ns.MTU(t, "eth0"); got != 1360 {
		t.Errorf("eth0 %d once the lock was free", got)
	}
}

// waitLockHeld returns once another process holds the lock name in dir.
func waitLockHeld(t *testing.T, dir, name string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		l, err := statefile.Acquire(dir, name, time.Millisecond, nil)
		if err != nil {
			return
		}
		l.Release()
		if time.Now().After(deadline) {
			t.Fatalf("nobody took %s in %s", name, dir)
		}
	}
}
