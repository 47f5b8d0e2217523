package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/netnstest"
)

// The test binary doubles as wslmtu, so the CLI is tested as users run it,
// inside a namespace, without a separate build step.
func TestMain(m *testing.M) {
	if os.Getenv("WSLMTU_TEST_AS_CLI") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

type cliResult struct {
	out  string
	code int
}

// wslmtu runs the CLI inside ns with a private state dir and config.
func wslmtu(t *testing.T, ns *netnstest.NS, dir string, args ...string) cliResult {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{"netns", "exec", ns.Name, self,
		"--state-dir", filepath.Join(dir, "state"), "--config", filepath.Join(dir, "wslmtu.toml")}, args...)
	cmd := exec.Command("ip", full...)
	cmd.Env = append(os.Environ(), "WSLMTU_TEST_AS_CLI=1")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{out: string(out), code: code}
}

func TestFixDryRunFixRevertInNamespace(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	dir := t.TempDir()

	r := wslmtu(t, ns, dir, "fix", "--dry-run", "--assume-wsl")
	if r.code != 0 || !strings.Contains(r.out, "eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)") {
		t.Fatalf("dry run (%d):\n%s", r.code, r.out)
	}
	if got := ns.MTU(t, "eth0"); got != 1280 {
		t.Fatalf("dry run changed eth0 to %d", got)
	}

	r = wslmtu(t, ns, dir, "status", "--assume-wsl")
	if r.code != exitUnhealthy || !strings.Contains(r.out, "unhealthy") {
		t.Errorf("status before fix (%d):\n%s", r.code, r.out)
	}

	r = wslmtu(t, ns, dir, "fix", "--assume-wsl")
	if r.code != 0 || ns.MTU(t, "eth0") != 1360 {
		t.Fatalf("fix (%d), eth0 %d:\n%s", r.code, ns.MTU(t, "eth0"), r.out)
	}

	r = wslmtu(t, ns, dir, "fix", "--assume-wsl")
	if r.code != 0 || !strings.Contains(r.out, "nothing to do") || ns.MTU(t, "eth0") != 1360 {
		t.Fatalf("second fix (%d):\n%s", r.code, r.out)
	}

	r = wslmtu(t, ns, dir, "status", "--assume-wsl")
	if r.code != 0 || !strings.Contains(r.out, "healthy") {
		t.Errorf("status after fix (%d):\n%s", r.code, r.out)
	}

	r = wslmtu(t, ns, dir, "revert")
	if r.code != 0 || ns.MTU(t, "eth0") != 1280 || !strings.Contains(r.out, "eth0: mtu 1360 → 1280") {
		t.Fatalf("revert (%d), eth0 %d:\n%s", r.code, ns.MTU(t, "eth0"), r.out)
	}
	r = wslmtu(t, ns, dir, "revert")
	if r.code != 0 || !strings.Contains(r.out, "nothing to revert") {
		t.Errorf("second revert (%d):\n%s", r.code, r.out)
	}
}

func TestFixOffWSLChangesNothing(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	// The test host is not WSL, and without --assume-wsl fix must leave it alone.
	r := wslmtu(t, ns, t.TempDir(), "fix")
	if r.code != 0 || !strings.Contains(r.out, "not applied: this is not WSL") || ns.MTU(t, "eth0") != 1280 {
		t.Fatalf("fix off WSL (%d):\n%s", r.code, r.out)
	}
}

func TestBadInputFailsClearlyAndChangesNothing(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	dir := t.TempDir()
	badConfig := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(badConfig, []byte("# mine\nmtu_strategy = \"raise-outer\"\nmax_outer_mtu = 100\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown strategy", []string{"fix", "--assume-wsl", "--mtu-strategy", "bogus"},
			`--mtu-strategy: unknown mtu strategy "bogus" (allowed: auto, raise-outer, lower-tunnel, off)`},
		{"unknown interface", []string{"fix", "--assume-wsl", "--outer-interface", "eth7"}, `outer interface "eth7" not found`},
		{"invalid config", []string{"fix", "--assume-wsl", "--config", badConfig},
			badConfig + ":3: max_outer_mtu: 100 is out of range (allowed: 1280 to 9000)"},
		{"mtu out of range", []string{"fix", "--assume-wsl", "--max-outer-mtu", "70000"}, "--max-outer-mtu: 70000 is out of range"},
		{"unknown flag", []string{"fix", "--assume-wsl", "--frobnicate"}, "unknown flag: --frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := wslmtu(t, ns, dir, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.out, tt.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit %d and %q", r.code, r.out, exitUsage, tt.want)
			}
			if ns.MTU(t, "eth0") != 1280 || ns.MTU(t, "tailscale0") != 1280 {
				t.Errorf("bad input changed an MTU")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "revert.json")); err == nil {
		t.Error("bad input wrote a revert record")
	}
}
