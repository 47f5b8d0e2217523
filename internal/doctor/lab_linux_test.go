//go:build linux

package doctor_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/doctor"
	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/probe"
	"github.com/wslmtu/wslmtu/internal/testenv/labtest"
	"github.com/wslmtu/wslmtu/windows"
)

// expect is one check's status and words its detail must hold.
type expect struct {
	status doctor.Status
	detail string
}

func assertChecks(t *testing.T, when string, checks []doctor.Check, want map[string]expect) {
	t.Helper()
	var all strings.Builder
	doctor.WriteText(&all, checks)
	for name, w := range want {
		c, ok := doctor.Find(checks, name)
		switch {
		case !ok:
			t.Errorf("%s: no check %q", when, name)
		case c.Status != w.status || !strings.Contains(c.Detail, w.detail):
			t.Errorf("%s: got %s want %s with %q", when, strings.TrimSpace(c.String()), w.status, w.detail)
		}
	}
	if t.Failed() {
		t.Logf("%s, all checks:\n%s", when, all.String())
	}
}

// TestDoctorInTheLab runs doctor against the namespace model of the broken
// WSL setup (eth0 and tailscale0 at 1280, MSS clamping asked for), applies
// the fix through the same host, and checks that each check moved from the
// broken state to the healthy one; the agent check keeps failing, since no
// agent runs there.
func TestDoctorInTheLab(t *testing.T) {
	l := labtest.New(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280})

	cfg := config.Default()
	cfg.AssumeWSL, cfg.MSSClamp, cfg.StateDir = true, true, t.TempDir()
	// Not a WSL kernel: detection says so and --assume-wsl overrides it.
	src := detect.Sources{Root: fstest.MapFS{"proc/sys/kernel/osrelease": {Data: []byte("6.18.0-lab\n")}},
		Getenv: func(string) string { return "" }}
	// Everything runs on a thread inside the lab's WSL namespace: netlink,
	// iptables and /proc/sys/net all see that namespace, not the host's.
	inWSL := func(fn func(fix.Host) error) error {
		return l.DoWSL(func() error { return fn(fix.HostAt(l.WSLNetlink(), src, cfg.StateDir)) })
	}
	doctorRun := func() []doctor.Check {
		var checks []doctor.Check
		if err := inWSL(func(h fix.Host) error {
			checks = doctor.Run(context.Background(), doctor.Inputs{Host: h, Config: cfg,
				Root: os.DirFS("/"), Windows: windows.ExecRunner{}})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return checks
	}

	checks := doctorRun()
	var text strings.Builder
	doctor.WriteText(&text, checks)
	t.Logf("doctor on the broken lab:\n%s", text.String())
	assertChecks(t, "broken", checks, map[string]expect{
		doctor.NameEnvironment:             {doctor.OK, "assumed WSL2"},
		doctor.NameAgent:                   {doctor.Fail, "no agent has run"},
		doctor.NamePlan:                    {doctor.Fail, "eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)"},
		doctor.MTUCheckName("tailscale0"):  {doctor.Fail, "eth0 1280 < 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead): packets over 1216 bytes are lost"},
		doctor.NameMSS:                     {doctor.Fail, "our rules are not in the firewall"},
		doctor.IPv6CheckName("tailscale0"): {doctor.OK, "1 global IPv6 address"},
		doctor.NameWindows:                 {doctor.Skip, "netsh.exe not found"},
	})
	if doctor.Healthy(checks) {
		t.Error("broken lab reported healthy")
	}
	if c, _ := doctor.Find(checks, doctor.NameTimestamps); c.Status == doctor.Fail {
		t.Errorf("tcp_timestamps must never fail the doctor: %s", c)
	}

	if err := inWSL(func(h fix.Host) error {
		r, err := h.Fix(cfg)
		t.Logf("fix:\n%s", r.Plan)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := l.EthMTU(); got != 1360 {
		t.Fatalf("fix left eth0 at %d", got)
	}

	checks = doctorRun()
	assertChecks(t, "fixed", checks, map[string]expect{
		doctor.NameAgent:                   {doctor.Fail, "no agent has run"},
		doctor.NamePlan:                    {doctor.OK, "nothing to change"},
		doctor.MTUCheckName("tailscale0"):  {doctor.OK, "eth0 1360 ≥ 1360 (tailscale0 1280 + 80"},
		doctor.NameMSS:                     {doctor.OK, "rules in place"},
		doctor.IPv6CheckName("tailscale0"): {doctor.OK, "1 global IPv6 address"},
	})
	if n := doctor.Failed(checks); n != 1 {
		t.Errorf("after the fix %d checks fail, want only the agent's", n)
	}

	// Lowering the tunnel below 1280 makes Linux delete its IPv6 addresses.
	if err := l.SetTunnelMTU(1200); err != nil {
		t.Fatal(err)
	}
	checks = doctorRun()
	assertChecks(t, "tunnel lowered", checks, map[string]expect{
		doctor.IPv6CheckName("tailscale0"): {doctor.Fail, "tailscale0 lost its IPv6 addresses after a too-low MTU"},
	})

	if err := inWSL(func(h fix.Host) error { _, _, err := h.Revert(); return err }); err != nil {
		t.Fatal(err)
	}
}

// Doctor runs the path checks itself (probe.Verify, as `wslmtu verify`):
// under outer_scope "all" the server behind the Windows VPN fails with the
// Windows side named, the tunnel peer passes.
func TestDoctorChecksPathsInTheLab(t *testing.T) {
	l := labtest.New(t, lab.Options{CorporateVPN: true})
	cfg := config.Default()
	cfg.AssumeWSL, cfg.StateDir = true, t.TempDir()
	cfg.MTUStrategy, cfg.OuterScope = config.RaiseOuter, config.ScopeAll
	peer, corp := l.PeerTunnelIP(false).String(), l.CorporateServerIP(false).String()
	cfg.Verify = []string{peer, corp}
	var checks []doctor.Check
	err := l.DoWSL(func() error {
		h := fix.HostAt(l.WSLNetlink(), l.Sources(), cfg.StateDir)
		if _, err := h.Fix(cfg); err != nil {
			return err
		}
		checks = doctor.Run(context.Background(), doctor.Inputs{Host: h, Config: cfg,
			Verify: func(ctx context.Context, hosts []string, r fix.Report) []fix.PathCheck {
				return probe.Verify(ctx, hosts, r, probe.Config{})
			}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	assertChecks(t, "scope all", checks, map[string]expect{
		doctor.NamePath + " " + peer: {doctor.OK, "via tailscale0: must carry 1280 bytes"},
		doctor.NamePath + " " + corp: {doctor.Fail, "likely side: Windows adapter"},
	})
}
