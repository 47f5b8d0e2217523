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

	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
	"github.com/wslmtu/wslmtu/internal/testenv/nspawn"
)

// buildDeb builds the .deb as the README says (go run ./cmd/wslmtu-pkgbuild),
// for this machine's architecture only, and returns its path.
func buildDeb(t *testing.T, extra ...string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	out := t.TempDir()
	args := append([]string{"run", "./cmd/wslmtu-pkgbuild", "-arch", runtime.GOARCH, "-formats", "deb", "-out", out}, extra...)
	cmd := exec.Command(goBin, args...)
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("pkgbuild made %v, want one .deb", debs)
	}
	return debs[0]
}

func debField(t *testing.T, deb, field string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "-f", deb, field).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s %s: %v", deb, field, err)
	}
	return strings.TrimSpace(string(out))
}

// agentProcesses lists the processes inside the container whose executable
// is the packaged binary (minbase has no pgrep).
func agentProcesses(c *nspawn.Container) string {
	out, _ := c.Exec("sh", "-c", `for p in /proc/[0-9]*; do [ "$(readlink $p/exe)" = /usr/bin/wslmtu ] && echo "${p#/proc/}"; done; true`)
	return strings.TrimSpace(string(out))
}

// TestDebPackageLifecycle is the package's acceptance test: the .deb installs in a
// booted Debian, the agent runs under the packaged unit; an upgrade keeps an
// edited config and restarts the agent; dpkg -r stops it and removes the
// binary and the unit but keeps the config and the fixes; dpkg -P removes
// the config and the state too. lintian finds no error in the package.
func TestDebPackageLifecycle(t *testing.T) {
	netnstest.RequireRoot(t, "boots systemd in systemd-nspawn and installs a package in it")
	for _, tool := range []string{"dpkg-deb", "systemd-nspawn"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	deb := buildDeb(t)
	version := debField(t, deb, "Version")
	upgrade := buildDeb(t, "-version", version+"+upgrade")
	t.Logf("built %s and %s", filepath.Base(deb), filepath.Base(upgrade))

	if _, err := exec.LookPath("lintian"); err != nil {
		t.Logf("lintian not installed: package not linted")
	} else {
		out, err := exec.Command("lintian", "--fail-on", "error", "--display-info", "--tag-display-limit", "0", deb).CombinedOutput()
		t.Logf("lintian %s:\n%s", filepath.Base(deb), out)
		if err != nil || regexp.MustCompile(`(?m)^E: `).Match(out) {
			t.Errorf("lintian reports errors (%v)", err)
		}
	}
	contents, _ := exec.Command("dpkg-deb", "-c", deb).Output()
	for _, want := range []string{"./usr/bin/wslmtu", "./lib/systemd/system/wslmtu.service", "./etc/wslmtu/wslmtu.toml",
		"./usr/share/bash-completion/completions/wslmtu", "./usr/share/zsh/vendor-completions/_wslmtu",
		"./usr/share/fish/vendor_completions.d/wslmtu.fish", "./usr/share/man/man1/wslmtu.1.gz",
		"./usr/share/man/man1/wslmtu-run.1.gz", "./usr/share/doc/wslmtu/copyright"} {
		if !strings.Contains(string(contents), want+"\n") {
			t.Errorf("the package lacks %s", want)
		}
	}
	if conffiles, _ := exec.Command("dpkg-deb", "-I", deb, "conffiles").Output(); strings.TrimSpace(string(conffiles)) != "/etc/wslmtu/wslmtu.toml" {
		t.Errorf("conffiles: %q", conffiles)
	}

	c := nspawn.Boot(t)
	t.Logf("container booted in %v", c.BootTime)
	c.AddWSLNetwork(t)
	for src, dst := range map[string]string{deb: "/root/wslmtu.deb", upgrade: "/root/wslmtu-upgrade.deb"} {
		if err := c.CopyIn(src, dst); err != nil {
			t.Fatal(err)
		}
	}

	out := c.Run(t, "dpkg", "-i", "/root/wslmtu.deb")
	t.Logf("dpkg -i:\n%s", out)
	if got := show(t, c, "ActiveState"); got != "active" {
		t.Fatalf("ActiveState %q after dpkg -i\n%s", got, c.Run(t, "journalctl", "-u", "wslmtu", "--no-pager"))
	}
	for prop, want := range map[string]string{"UnitFileState": "enabled", "Type": "notify",
		"FragmentPath": "/lib/systemd/system/wslmtu.service"} {
		if got := show(t, c, prop); got != want {
			t.Errorf("%s=%q, want %q", prop, got, want)
		}
	}
	if got := strings.TrimSpace(c.Run(t, "wslmtu", "version")); got != "wslmtu "+version {
		t.Errorf("wslmtu version: %q, want the package's %s", got, version)
	}
	if got, want := c.Run(t, "cat", "/etc/wslmtu/wslmtu.toml"), c.Run(t, "wslmtu", "config", "--default"); got != want {
		t.Errorf("the packaged config is not `wslmtu config --default`:\n%s", got)
	}
	if out := c.Run(t, "bash", "-c", "source /usr/share/bash-completion/completions/wslmtu && complete -p wslmtu"); !strings.Contains(out, "wslmtu") {
		t.Errorf("bash completion: %q", out)
	}
	// Not WSL: the agent runs and changes nothing until assume_wsl is set.
	// Editing the config makes it act (it reloads the file).
	if got := steadyMTU(c, "eth0", 1280); got != 1280 {
		t.Errorf("eth0 %d before assume_wsl", got)
	}
	c.Run(t, "sh", "-c", "echo 'assume_wsl = true' >>/etc/wslmtu/wslmtu.toml")
	waitMTU(t, c, "eth0", 1360)

	// Upgrade: the edited config stays, the agent is restarted.
	pid := show(t, c, "MainPID")
	out = c.Run(t, "dpkg", "-i", "/root/wslmtu-upgrade.deb")
	t.Logf("dpkg -i (upgrade):\n%s", out)
	if !strings.Contains(out, "restarted wslmtu.service") {
		t.Errorf("the upgrade did not say it restarted the agent")
	}
	if conf := c.Run(t, "cat", "/etc/wslmtu/wslmtu.toml"); !regexp.MustCompile(`(?m)^assume_wsl = true$`).MatchString(conf) {
		t.Errorf("the upgrade lost the edited config:\n%s", conf)
	}
	if got := show(t, c, "MainPID"); got == pid || got == "0" || show(t, c, "ActiveState") != "active" {
		t.Errorf("MainPID %s → %s (%s): not restarted by the upgrade", pid, got, show(t, c, "ActiveState"))
	}
	if got := strings.TrimSpace(c.Run(t, "wslmtu", "version")); got != "wslmtu "+version+"+upgrade" {
		t.Errorf("after the upgrade: %q", got)
	}
	c.Run(t, "ip", "link", "set", "dev", "eth0", "mtu", "1280")
	waitMTU(t, c, "eth0", 1360) // the upgraded agent repairs

	// Remove: agent stopped and disabled, binary and unit gone, the config
	// and the fixes kept.
	out = c.Run(t, "dpkg", "-r", "wslmtu")
	t.Logf("dpkg -r:\n%s", out)
	for _, p := range []string{"/usr/bin/wslmtu", "/lib/systemd/system/wslmtu.service",
		"/etc/systemd/system/multi-user.target.wants/wslmtu.service"} {
		if exists(c, p) {
			t.Errorf("%s still there after dpkg -r", p)
		}
	}
	if got := show(t, c, "LoadState"); got != "not-found" {
		t.Errorf("LoadState %q after dpkg -r, want not-found", got)
	}
	if procs := agentProcesses(c); procs != "" {
		t.Errorf("agent still running after dpkg -r: pids %s", procs)
	}
	if !exists(c, "/etc/wslmtu/wslmtu.toml") || !exists(c, "/var/lib/wslmtu") {
		t.Error("dpkg -r removed the config or the state")
	}
	if got := steadyMTU(c, "eth0", 1360); got != 1360 {
		t.Errorf("eth0 %d after dpkg -r: the fix was not kept", got)
	}

	// Purge: the config and the state go too.
	c.Run(t, "dpkg", "-P", "wslmtu")
	for _, p := range []string{"/etc/wslmtu", "/var/lib/wslmtu"} {
		if exists(c, p) {
			t.Errorf("%s still there after dpkg -P", p)
		}
	}
	if out, err := c.Exec("dpkg", "-s", "wslmtu"); err == nil {
		t.Errorf("dpkg -s after purge:\n%s", out)
	}
}

// steadyMTU checks for half a second that a link stays at want and returns
// the MTU it has (the first other one seen).
func steadyMTU(c *nspawn.Container, link string, want int) int {
	re := regexp.MustCompile(`\bmtu (\d+)`)
	got := -1
	for i := 0; i < 10; i++ {
		out, _ := c.Exec("ip", "-o", "link", "show", "dev", link)
		if m := re.FindStringSubmatch(string(out)); m != nil {
			got, _ = strconv.Atoi(m[1])
		}
		if got != want {
			break
		}
		c.Exec("sleep", "0.05")
	}
	return got
}
