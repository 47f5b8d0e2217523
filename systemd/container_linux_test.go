package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/testenv/nspawn"
)

// These tests boot a real systemd (Debian bookworm in systemd-nspawn, see
// internal/testenv/nspawn) and run install.sh in it, as a user would.

func goBuild(t *testing.T, pkg string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command(goBin, "build", "-o", out, pkg)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// bootWithInstaller boots a container holding install.sh and the agent
// binary at /root/wslmtu.
func bootWithInstaller(t *testing.T, agent string) *nspawn.Container {
	t.Helper()
	c := nspawn.Boot(t)
	t.Logf("container booted in %v", c.BootTime)
	for src, dst := range map[string]string{"../install.sh": "/root/src/install.sh", agent: "/root/wslmtu"} {
		if err := c.CopyIn(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func exists(c *nspawn.Container, path string) bool {
	_, err := os.Lstat(filepath.Join(c.Root, path))
	return err == nil
}

func show(t *testing.T, c *nspawn.Container, prop string) string {
	t.Helper()
	return strings.TrimSpace(c.Run(t, "systemctl", "show", "-p", prop, "--value", "wslmtu.service"))
}

// TestInstallScriptLifecycle uses a stand-in agent (testdata/fakeagent) that
// exercises what the sandbox must allow, so it runs before the real agent
// exists and independently of it.
func TestInstallScriptLifecycle(t *testing.T) {
	c := bootWithInstaller(t, goBuild(t, "./systemd/testdata/fakeagent"))

	out := c.Run(t, "sh", "/root/src/install.sh", "--binary", "/root/wslmtu", "--assume-wsl")
	t.Logf("install.sh:\n%s", out)
	if got := show(t, c, "ActiveState"); got != "active" {
		t.Fatalf("ActiveState %q after install\n%s", got, c.Run(t, "journalctl", "-u", "wslmtu", "--no-pager"))
	}
	if got := show(t, c, "Type"); got != "notify" {
		t.Errorf("Type=%q, want notify", got)
	}
	if got := show(t, c, "UnitFileState"); got != "enabled" {
		t.Errorf("UnitFileState=%q, want enabled", got)
	}
	if got := show(t, c, "WatchdogUSec"); got != "30s" {
		t.Errorf("WatchdogUSec=%q, want 30s", got)
	}
	journal := c.Run(t, "journalctl", "-u", "wslmtu", "--no-pager")
	if !strings.Contains(journal, "sandbox allows netlink, iptables-nft, iptables-legacy") {
		t.Errorf("stand-in agent did not report a usable sandbox:\n%s", journal)
	}
	conf := c.Run(t, "cat", "/etc/wslmtu/wslmtu.toml")
	if !regexp.MustCompile(`(?m)^assume_wsl = true$`).MatchString(conf) {
		t.Errorf("config lacks assume_wsl = true:\n%s", conf)
	}
	if out, err := c.Exec("systemd-analyze", "verify", "/etc/systemd/system/wslmtu.service"); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	sec, _ := c.Exec("systemd-analyze", "security", "--no-pager", "wslmtu.service")
	if m := regexp.MustCompile(`Overall exposure level for wslmtu.service: (.*)`).FindSubmatch(sec); m != nil {
		t.Logf("systemd-analyze security: exposure %s", m[1])
	} else {
		t.Errorf("no exposure figure from systemd-analyze security:\n%s", sec)
	}

	// Again: updates in place and restarts.
	pid := show(t, c, "MainPID")
	c.Run(t, "sh", "/root/src/install.sh", "--binary", "/root/wslmtu")
	if got := show(t, c, "ActiveState"); got != "active" {
		t.Fatalf("ActiveState %q after the second install", got)
	}
	if got := show(t, c, "MainPID"); got == pid || got == "0" {
		t.Errorf("MainPID %s → %s: not restarted", pid, got)
	}

	// An outdated unit (an older wslmtu's) is replaced in place.
	c.Run(t, "sh", "-c", "echo '# old' >>/etc/systemd/system/wslmtu.service")
	out = c.Run(t, "/usr/local/bin/wslmtu", "install")
	if !strings.Contains(out, "updated") {
		t.Errorf("outdated unit not reported as updated:\n%s", out)
	}
	if got := c.Run(t, "cat", "/etc/systemd/system/wslmtu.service"); got != Unit(DefaultBinary) {
		t.Errorf("unit not replaced:\n%s", got)
	}
	if got := show(t, c, "ActiveState"); got != "active" {
		t.Fatalf("ActiveState %q after the update", got)
	}

	out = c.Run(t, "sh", "/root/src/install.sh", "--uninstall")
	t.Logf("install.sh --uninstall:\n%s", out)
	for _, p := range []string{"/etc/systemd/system/wslmtu.service", "/etc/systemd/system/multi-user.target.wants/wslmtu.service", "/usr/local/bin/wslmtu"} {
		if exists(c, p) {
			t.Errorf("%s still there after --uninstall", p)
		}
	}
	if got := show(t, c, "LoadState"); got != "not-found" {
		t.Errorf("LoadState %q after uninstall, want not-found", got)
	}
	if !exists(c, "/etc/wslmtu/wslmtu.toml") {
		t.Error("--uninstall removed the user's config")
	}
	c.Run(t, "sh", "/root/src/install.sh", "--uninstall") // idempotent
	c.Run(t, "sh", "/root/src/install.sh", "--uninstall", "--purge")
	if exists(c, "/etc/wslmtu") || exists(c, "/var/lib/wslmtu") {
		t.Error("--purge left /etc/wslmtu or /var/lib/wslmtu")
	}
}

// An agent that does not start leaves nothing installed behind.
func TestInstallScriptRollsBack(t *testing.T) {
	c := bootWithInstaller(t, goBuild(t, "./systemd/testdata/fakeagent"))
	c.Run(t, "sh", "-c", "mkdir -p /etc/wslmtu && echo 'fail = true' >/etc/wslmtu/wslmtu.toml")

	out, err := c.Exec("sh", "/root/src/install.sh", "--binary", "/root/wslmtu")
	if err == nil {
		t.Fatalf("install.sh succeeded with an agent that cannot start:\n%s", out)
	}
	t.Logf("install.sh (expected to fail):\n%s", out)
	for _, p := range []string{"/etc/systemd/system/wslmtu.service", "/etc/systemd/system/multi-user.target.wants/wslmtu.service", "/usr/local/bin/wslmtu"} {
		if exists(c, p) {
			t.Errorf("%s left behind by a failed install", p)
		}
	}
	if !exists(c, "/etc/wslmtu/wslmtu.toml") {
		t.Error("a failed install removed the user's existing config")
	}
}

// agentBuilt tells whether cmd/wslmtu has the agent command yet.
func agentBuilt(t *testing.T) {
	t.Helper()
	files, _ := filepath.Glob("../cmd/wslmtu/*.go")
	re := regexp.MustCompile(`Use:\s*"run\b`)
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && re.Match(b) {
			return
		}
	}
	t.Skip("agent not built yet: cmd/wslmtu has no `run` command")
}

func waitMTU(t *testing.T, c *nspawn.Container, link string, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	re := regexp.MustCompile(`\bmtu (\d+)`)
	var got string
	for time.Now().Before(deadline) {
		out, _ := c.Exec("ip", "-o", "link", "show", "dev", link)
		if m := re.FindStringSubmatch(string(out)); m != nil {
			got = m[1]
			if got == strconv.Itoa(want) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s mtu %s, want %d\n%s", link, got, want, c.Run(t, "journalctl", "-u", "wslmtu", "--no-pager", "-n", "40"))
}

// TestAgentInContainer runs the real agent under its unit: eth0 at 1280 with
// a tailscale0 at 1280 gets fixed, a reset gets repaired, and a kill -9 is
// followed by a restart that keeps repairing.
func TestAgentInContainer(t *testing.T) {
	agentBuilt(t)
	c := bootWithInstaller(t, goBuild(t, "./cmd/wslmtu"))

	c.AddWSLNetwork(t)

	out := c.Run(t, "sh", "/root/src/install.sh", "--binary", "/root/wslmtu", "--assume-wsl")
	t.Logf("install.sh:\n%s", out)
	if got := show(t, c, "Type"); got != "notify" {
		t.Errorf("Type=%q, want notify", got)
	}
	waitMTU(t, c, "eth0", 1360)

	c.Run(t, "ip", "link", "set", "dev", "eth0", "mtu", "1280")
	waitMTU(t, c, "eth0", 1360)

	pid := show(t, c, "MainPID")
	c.Run(t, "systemctl", "kill", "-s", "KILL", "wslmtu.service")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if p, s := show(t, c, "MainPID"), show(t, c, "ActiveState"); p != pid && p != "0" && s == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restarted after kill -9\n%s", c.Run(t, "systemctl", "status", "--no-pager", "wslmtu"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Run(t, "ip", "link", "set", "dev", "eth0", "mtu", "1280")
	waitMTU(t, c, "eth0", 1360)

	// MSS clamping from the sandboxed agent: turned on by editing the config
	// (the agent reloads it), a rule deleted by hand comes back on
	// `systemctl reload`.
	c.Run(t, "sh", "-c", "echo 'mss_clamp = true' >>/etc/wslmtu/wslmtu.toml")
	rule := "-A WSLMTU-IN -i tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1241:65535 -j TCPMSS --set-mss 1240"
	waitRule(t, c, rule, true)
	c.Run(t, "sh", "-c", "iptables -t mangle -D "+strings.TrimPrefix(rule, "-A "))
	waitRule(t, c, rule, false)
	c.Run(t, "systemctl", "reload", "wslmtu")
	waitRule(t, c, rule, true)
	if out := c.Run(t, "journalctl", "-u", "wslmtu", "--no-pager"); !strings.Contains(out, "resync requested") {
		t.Errorf("no resync in the journal after systemctl reload:\n%s", out)
	}

	c.Run(t, "sh", "/root/src/install.sh", "--uninstall")
	if exists(c, "/etc/systemd/system/wslmtu.service") || exists(c, "/usr/local/bin/wslmtu") {
		t.Error("unit or binary left after --uninstall")
	}
}

// waitRule waits until the mangle table inside the container has (or lacks) rule.
func waitRule(t *testing.T, c *nspawn.Container, rule string, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := c.Exec("iptables", "-t", "mangle", "-S")
		if strings.Contains(string(out), rule) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rule %q present=%v, want %v; mangle table:\n%s\njournal:\n%s", rule, !want, want, out,
				c.Run(t, "journalctl", "-u", "wslmtu", "--no-pager"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
