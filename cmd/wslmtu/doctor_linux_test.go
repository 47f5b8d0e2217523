package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/doctor"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// TestDoctorInNamespace runs `wslmtu doctor` as users do, inside a namespace
// shaped like the broken WSL setup, before and after `wslmtu fix`.
func TestDoctorInNamespace(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	dir := t.TempDir()

	r := wslmtu(t, ns, dir, "doctor", "--assume-wsl")
	for _, want := range []string{
		"✓ environment: assumed WSL2",
		"✗ agent: no agent has run",
		"  → sudo ./install.sh (or `sudo systemctl start wslmtu`)",
		"✗ plan: 5 changes pending (mtu_strategy auto)", // eth0 and the tunnel scope's rules and routes
		"    eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)",
		"  → run `wslmtu fix`",
		"✗ mtu tailscale0: eth0 1280 < 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead): packets over 1216 bytes are lost",
		"- windows adapters: netsh.exe not found",
		"unhealthy: 3 checks failed",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("doctor before fix lacks %q", want)
		}
	}
	if r.code != exitUnhealthy || t.Failed() {
		t.Fatalf("doctor before fix (exit %d, want %d):\n%s", r.code, exitUnhealthy, r.out)
	}

	if r := wslmtu(t, ns, dir, "fix", "--assume-wsl"); r.code != 0 {
		t.Fatalf("fix (%d):\n%s", r.code, r.out)
	}

	r = wslmtu(t, ns, dir, "doctor", "--assume-wsl", "--json")
	if r.code != exitUnhealthy {
		t.Errorf("doctor after fix: exit %d, want %d (the agent is not running)", r.code, exitUnhealthy)
	}
	// stderr carries the one-line verdict after the JSON document.
	doc := r.out[:strings.LastIndex(r.out, "}")+1]
	var res doctor.Result
	if err := json.Unmarshal([]byte(doc), &res); err != nil {
		t.Fatalf("doctor --json: %v:\n%s", err, r.out)
	}
	got := map[string]doctor.Status{}
	for _, c := range res.Checks {
		got[c.Name] = c.Status
	}
	for name, want := range map[string]doctor.Status{
		"environment": doctor.OK, "agent": doctor.Fail, "plan": doctor.OK,
		"mtu tailscale0": doctor.OK, "ipv6 tailscale0": doctor.OK, "mss clamp": doctor.Skip, "windows adapters": doctor.Skip,
	} {
		if got[name] != want {
			t.Errorf("after fix, %s: %s, want %s", name, got[name], want)
		}
	}
	if res.Healthy || t.Failed() {
		t.Logf("doctor --json after fix:\n%s", r.out)
	}
}

func TestDoctorBadFlag(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	r := wslmtu(t, ns, t.TempDir(), "doctor", "--mtu-strategy", "sideways")
	if r.code != exitUsage || !strings.Contains(r.out, "sideways") {
		t.Errorf("bad flag (exit %d, want %d):\n%s", r.code, exitUsage, r.out)
	}
}
