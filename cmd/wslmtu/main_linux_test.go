package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
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

// status --prom prints the agent's counters (from its state file) and the
// host's MTUs in the Prometheus text format, and exits as status does.
func TestStatusPromInNamespace(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	dir := t.TempDir()
	// The counters a stopped agent left behind.
	started := time.Date(2026, 11, 30, 5, 48, 26, 0, time.UTC)
	counters := agentstatus.Counters{
		PID: 1 << 22, Started: started, Reconciles: 9, Repairs: 3, RepairsBy: map[string]int{"eth0": 3},
		LastRepair: &agentstatus.Repair{Time: started.Add(time.Minute), Interface: "eth0", From: 1280, To: 1360, Cause: "eth0 mtu is 1280", Latency: 2 * time.Millisecond},
		Fights:     1, Resubscribe: 2, Stopped: started.Add(time.Hour),
	}
	data, _ := json.Marshal(counters)
	os.MkdirAll(filepath.Join(dir, "state"), 0o700)
	if err := os.WriteFile(filepath.Join(dir, "state", "agent.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}

	metric := func(out, name string, labels ...string) float64 {
		t.Helper()
		p := expfmt.NewTextParser(model.LegacyValidation)
		families, err := p.TextToMetricFamilies(strings.NewReader(out))
		if err != nil {
			t.Fatalf("status --prom: %v\n%s", err, out)
		}
		for _, m := range families[name].GetMetric() {
			if len(labels) == 0 || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetName() == labels[0] && m.GetLabel()[0].GetValue() == labels[1] {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s%v in:\n%s", name, labels, out)
		return 0
	}

	r := wslmtu(t, ns, dir, "status", "--prom", "--assume-wsl")
	if r.code != exitUnhealthy || metric(r.out, "wslmtu_healthy") != 0 || metric(r.out, "wslmtu_outer_mtu_bytes", "interface", "eth0") != 1280 {
		t.Errorf("status --prom before fix (exit %d):\n%s", r.code, r.out)
	}
	if r := wslmtu(t, ns, dir, "fix", "--assume-wsl"); r.code != 0 {
		t.Fatalf("fix (%d):\n%s", r.code, r.out)
	}
	r = wslmtu(t, ns, dir, "status", "--prom", "--assume-wsl")
	if r.code != 0 {
		t.Errorf("status --prom after fix: exit %d:\n%s", r.code, r.out)
	}
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wslmtu_healthy", nil, 1},
		{"wslmtu_agent_running", nil, 0},
		{"wslmtu_outer_mtu_bytes", []string{"interface", "eth0"}, 1360},
		{"wslmtu_tunnel_mtu_bytes", []string{"interface", "tailscale0"}, 1280},
		{"wslmtu_repairs_total", []string{"interface", "eth0"}, 3},
		{"wslmtu_repairs_total", []string{"interface", "tailscale0"}, 0},
		{"wslmtu_reconciles_total", nil, 9},
		{"wslmtu_fights_total", nil, 1},
		{"wslmtu_netlink_resubscribes_total", nil, 2},
		{"wslmtu_last_repair_timestamp_seconds", nil, float64(started.Add(time.Minute).Unix())},
		{"wslmtu_last_repair_latency_seconds", nil, 0.002},
		{"wslmtu_build_info", []string{"version", "dev"}, 1},
	} {
		if got := metric(r.out, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	if r := wslmtu(t, ns, dir, "status", "--prom", "--json"); r.code != exitUsage || !strings.Contains(r.out, "--json and --prom exclude each other") {
		t.Errorf("--prom --json (exit %d):\n%s", r.code, r.out)
	}
}
