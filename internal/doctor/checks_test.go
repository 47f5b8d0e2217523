package doctor

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/windows"
)

// want is what a test asserts about one check: its status, and words its
// detail and remedy must contain (empty: not asserted; "-" for remedy: none).
type want struct {
	status Status
	detail []string
	remedy string
}

func assertCheck(t *testing.T, c Check, w want) {
	t.Helper()
	if c.Status != w.status {
		t.Errorf("%s: status %s, want %s\n%s", c.Name, c.Status, w.status, c)
	}
	for _, d := range w.detail {
		if !strings.Contains(c.Detail, d) {
			t.Errorf("%s: detail lacks %q:\n%s", c.Name, d, c.Detail)
		}
	}
	switch {
	case w.remedy == "-" && c.Remedy != "":
		t.Errorf("%s: unexpected remedy %q", c.Name, c.Remedy)
	case w.remedy != "" && w.remedy != "-" && !strings.Contains(c.Remedy, w.remedy):
		t.Errorf("%s: remedy %q lacks %q", c.Name, c.Remedy, w.remedy)
	}
}

func TestCheckEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  detect.Environment
		want want
	}{
		{"wsl2 nat", detect.Environment{WSL: true, Version: 2, NetworkingMode: "nat"},
			want{OK, []string{"WSL2, networking mode nat"}, "-"}},
		{"wsl2 mirrored", detect.Environment{WSL: true, Version: 2, NetworkingMode: "mirrored"},
			want{OK, []string{"networking mode mirrored", "mirrored networking: each interface mirrors a Windows adapter"}, "-"}},
		{"wsl1", detect.Environment{WSL: true, Version: 1, Note: "WSL1 shares Windows' network stack"},
			want{Fail, []string{"WSL1 has no eth0 MTU to fix"}, "--set-version"}},
		{"not wsl", detect.Environment{Note: "the kernel is not a WSL kernel"},
			want{Fail, []string{"not WSL: the kernel is not a WSL kernel"}, "--assume-wsl"}},
		{"docker desktop", detect.Environment{Note: "this is Docker Desktop's own WSL distro (docker-desktop)"},
			want{Fail, []string{"Docker Desktop"}, "--assume-wsl"}},
		{"assumed", detect.Environment{WSL: true, Version: 2, Assumed: true, Note: "the kernel is not a WSL kernel", NetworkingMode: "nat"},
			want{OK, []string{"assumed WSL2 (--assume-wsl)", "the kernel is not a WSL kernel", "nat"}, "-"}},
	} {
		t.Run(tc.name, func(t *testing.T) { assertCheck(t, CheckEnvironment(tc.env), tc.want) })
	}
}

func TestCheckAgent(t *testing.T) {
	started := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	last := &agentstatus.Repair{Time: started.Add(time.Hour), Interface: "eth0", From: 1280, To: 1360,
		Cause: "RTM_NEWLINK eth0", Latency: 420 * time.Microsecond}
	for _, tc := range []struct {
		name string
		st   agentstatus.Status
		err  error
		want want
	}{
		{"never ran", agentstatus.Status{}, nil,
			want{Fail, []string{"no agent has run with state dir /var/lib/wslmtu"}, "sudo ./install.sh (or `sudo systemctl start wslmtu`)"}},
		{"running with repairs", agentstatus.Status{Known: true, Running: true,
			Counters: agentstatus.Counters{PID: 42, Started: started, Repairs: 3, LastRepair: last}}, nil,
			want{OK, []string{"running (pid 42", "3 repairs", "last repair: eth0: mtu 1280 → 1360 after RTM_NEWLINK eth0, in 420µs"}, "-"}},
		{"running, no repair yet", agentstatus.Status{Known: true, Running: true, Counters: agentstatus.Counters{PID: 42, Started: started}}, nil,
			want{OK, []string{"0 repairs"}, "-"}},
		{"stopped", agentstatus.Status{Known: true, Counters: agentstatus.Counters{PID: 42, Started: started, Stopped: started.Add(time.Hour), Repairs: 1, Fights: 2, LastRepair: last}}, nil,
			want{Fail, []string{"not running: stopped at", "1 repairs, 2 fights", "last repair: eth0"}, "systemctl start wslmtu"}},
		{"crashed", agentstatus.Status{Known: true, Counters: agentstatus.Counters{PID: 42}}, nil,
			want{Fail, []string{"pid 42 is gone"}, "sudo ./install.sh"}},
		{"unreadable", agentstatus.Status{}, errors.New("agent.json: unexpected end of JSON input"),
			want{Fail, []string{"cannot read the agent's counters in /var/lib/wslmtu", "unexpected end"}, "--state-dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) { assertCheck(t, CheckAgent("/var/lib/wslmtu", tc.st, tc.err), tc.want) })
	}
}

// broken is the measured failing setup: eth0 and tailscale0 both at 1280.
func state(outerMTU int, tunnels ...detect.Link) detect.State {
	outer := detect.Link{Name: "eth0", Index: 2, MTU: outerMTU, Up: true}
	return detect.State{Env: detect.Environment{WSL: true, Version: 2, NetworkingMode: "nat"},
		Links: append([]detect.Link{outer}, tunnels...), Outer: &outer, OuterWhy: "holds the default route", Tunnels: tunnels}
}

func tunLink(name string, mtu, v6 int) detect.Link {
	return detect.Link{Name: name, Index: 3, MTU: mtu, Kind: "tun", Up: true, IPv6Addrs: v6}
}

func TestCheckPlan(t *testing.T) {
	cfg := config.Default()
	mssCfg := cfg
	mssCfg.MSSClamp = true
	absent := fix.NewPlan(state(1360, tunLink("tailscale0", 1280, 1)), fix.Record{}, mssCfg)
	absent.MSS.State, absent.MSS.Backend = fix.MSSAbsent, "nft: the default iptables"
	refused := fix.NewPlan(detect.State{Env: detect.Environment{Note: "the kernel is not a WSL kernel"}}, fix.Record{}, cfg)
	capped := cfg
	capped.MaxOuterMTU = 1300

	for _, tc := range []struct {
		name string
		plan fix.Plan
		want want
	}{
		{"broken", fix.NewPlan(state(1280, tunLink("tailscale0", 1280, 1)), fix.Record{}, cfg),
			want{Fail, []string{"1 change pending (mtu_strategy auto)", "eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)"}, "run `wslmtu fix`"}},
		{"healthy", fix.NewPlan(state(1360, tunLink("tailscale0", 1280, 1)), fix.Record{}, cfg),
			want{OK, []string{"nothing to change (mtu_strategy auto)"}, "-"}},
		{"mss rules missing", absent,
			want{Fail, []string{"the MSS rules are not in place (mtu_strategy auto)", "mss clamp: add rules (iptables nft: the default iptables)"}, "run `wslmtu fix`"}},
		{"capped", fix.NewPlan(state(1280, tunLink("tailscale0", 1280, 1)), fix.Record{}, capped),
			want{Fail, []string{"eth0: mtu 1280 → 1300", "warning: tailscale0 needs eth0 1360 but max_outer_mtu is 1300"}, "wslmtu fix"}},
		{"not wsl", refused,
			want{Skip, []string{"not applied here: this is not WSL"}, "-"}},
	} {
		t.Run(tc.name, func(t *testing.T) { assertCheck(t, CheckPlan(fix.Report{Plan: tc.plan}), tc.want) })
	}
}

func TestCheckMTUs(t *testing.T) {
	cfg := config.Default()
	for _, tc := range []struct {
		name  string
		st    detect.State
		wants map[string]want
	}{
		{"broken 1280/1280", state(1280, tunLink("tailscale0", 1280, 1)), map[string]want{
			"mtu tailscale0": {Fail, []string{"eth0 1280 < 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead): packets over 1216 bytes are lost (over 1200 with an IPv6 underlay)"}, "eth0 needs 1360"},
		}},
		{"fixed", state(1360, tunLink("tailscale0", 1280, 1)), map[string]want{
			"mtu tailscale0": {OK, []string{"eth0 1360 ≥ 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)"}, "-"},
		}},
		// 1340 is enough over IPv4 (1280 + 60) but not over IPv6 (measured: hangs).
		{"ipv4 only", state(1340, tunLink("tailscale0", 1280, 1)), map[string]want{
			"mtu tailscale0": {Fail, []string{"eth0 1340 < 1360 (tailscale0 1280 + 80", "fine over an IPv4 underlay, but over IPv6 packets over 1248 bytes are lost"}, "wslmtu fix"},
		}},
		{"two tunnels", state(1400, tunLink("tailscale0", 1280, 1), tunLink("wg0", 1420, 0)), map[string]want{
			"mtu tailscale0": {OK, []string{"eth0 1400 ≥ 1360 (tailscale0 1280 + 80"}, "-"},
			"mtu wg0":        {Fail, []string{"eth0 1400 < 1500 (wg0 1420 + 80 WireGuard/IPv6 overhead): packets over 1328 bytes are lost (over 1312 with an IPv6 underlay)"}, "wg0 at most 1320"},
		}},
		{"zerotier", state(1280, tunLink("zt3jnkd6ic", 2800, 1)), map[string]want{
			"mtu zt3jnkd6ic": {Fail, []string{"eth0 1280 < 1480 (zt3jnkd6ic: ZeroTier sends 1432-byte UDP payloads + 48 UDP/IPv6): zerotier-one's full-size UDP packets are fragmented and lost"}, "eth0 needs 1480)"},
		}},
		{"no tunnel", detect.State{Outer: &detect.Link{Name: "eth0", MTU: 1280}, MissingTunnels: []string{"tailscale0"}}, map[string]want{
			"mtu": {Skip, []string{"no tunnel found (tailscale0, wg*, wt*, zt*)", "tailscale0 not present"}, "-"},
		}},
		{"no outer", detect.State{Tunnels: []detect.Link{tunLink("tailscale0", 1280, 1)}}, map[string]want{
			"mtu": {Fail, []string{"no outer interface"}, "--outer-interface"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checks := CheckMTUs(tc.st, cfg, fix.Plan{})
			if len(checks) != len(tc.wants) {
				t.Fatalf("got %d checks, want %d: %v", len(checks), len(tc.wants), checks)
			}
			for name, w := range tc.wants {
				c, ok := Find(checks, name)
				if !ok {
					t.Fatalf("no check %q in %v", name, checks)
				}
				assertCheck(t, c, w)
			}
		})
	}
}

func TestCheckMSS(t *testing.T) {
	on := config.Default()
	on.MSSClamp = true
	off := config.Default()
	plan := func(st fix.MSSState, detail string) fix.Plan {
		p := fix.NewPlan(state(1360, tunLink("tailscale0", 1280, 1)), fix.Record{}, on)
		p.MSS.State, p.MSS.Detail, p.MSS.Backend = st, detail, "nft: the default iptables"
		p.MSS.Families = firewall.Families
		return p
	}
	noOuter := fix.NewPlan(detect.State{Env: detect.Environment{WSL: true, Version: 2}, Tunnels: []detect.Link{tunLink("tailscale0", 1280, 1)}}, fix.Record{}, on)
	leftover := fix.Plan{MSS: &fix.MSSPlan{Clamp: false, Backend: "legacy: our chains are there (revert record)", State: fix.MSSPresent}}
	for _, tc := range []struct {
		name string
		cfg  config.Config
		plan fix.Plan
		want want
	}{
		{"off", off, fix.Plan{}, want{Skip, []string{"mss_clamp is off"}, "-"}},
		{"off with leftovers", off, leftover, want{Fail, []string{"our chains are still in the firewall", "iptables legacy"}, "wslmtu revert"}},
		{"in sync", on, plan(fix.MSSInSync, ""), want{OK, []string{"rules in place (iptables nft: the default iptables): IPv4 1240, IPv6 1220", "iptables, ip6tables"}, "-"}},
		{"absent", on, plan(fix.MSSAbsent, ""), want{Fail, []string{"our rules are not in the firewall", "want IPv4 1240"}, "run `wslmtu fix`"}},
		{"differs", on, plan(fix.MSSDiffers, "WSLMTU-IN has 1 extra rule"), want{Fail, []string{"our rules differ from the plan", "WSLMTU-IN has 1 extra rule"}, "run `wslmtu fix`"}},
		{"no TCPMSS", on, plan(fix.MSSUnavailable, "iptables: No chain/target/match by that name (TCPMSS)"),
			want{Fail, []string{"cannot clamp: iptables: No chain/target/match by that name (TCPMSS)"}, "TCPMSS"}},
		{"no outer", on, noOuter, want{Fail, []string{"no MSS could be planned", "no outer interface"}, "--outer-interface"}},
	} {
		t.Run(tc.name, func(t *testing.T) { assertCheck(t, CheckMSS(tc.cfg, tc.plan), tc.want) })
	}
}

func TestCheckIPv6(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    detect.Link
		want want
	}{
		{"lost", tunLink("tailscale0", 1200, 0), want{Fail, []string{"tailscale0 lost its IPv6 addresses after a too-low MTU (1200 < 1280"},
			"then restart the tunnel (`sudo tailscale down && sudo tailscale up`)"}},
		{"lost on wireguard", tunLink("wg0", 1200, 0), want{Fail, []string{"wg0 lost its IPv6 addresses"}, "`sudo wg-quick down wg0 && sudo wg-quick up wg0`"}},
		{"about to lose", tunLink("wg0", 1200, 2), want{Warn, []string{"below 1280: Linux will delete its 2 IPv6 addresses"}, "raise-outer"}},
		{"has them", tunLink("tailscale0", 1280, 1), want{OK, []string{"mtu 1280, 1 global IPv6 address"}, "-"}},
		{"ipv4-only", tunLink("wg0", 1420, 0), want{OK, []string{"no global IPv6 address"}, "-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checks := CheckIPv6(state(1500, tc.t))
			if len(checks) != 1 || checks[0].Name != "ipv6 "+tc.t.Name {
				t.Fatalf("checks: %v", checks)
			}
			assertCheck(t, checks[0], tc.want)
		})
	}
	if c := CheckIPv6(detect.State{}); len(c) != 1 || c[0].Status != Skip {
		t.Errorf("no tunnel: %v", c)
	}
}

func TestCheckTCPTimestamps(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    Sysctl
		want want
	}{
		{"on", Sysctl{Value: "1"}, want{OK, []string{"= 1", "different problem", "microsoft/WSL#40615", "sysctl -w net.ipv4.tcp_timestamps=0"}, ""}},
		{"random offsets", Sysctl{Value: "2"}, want{OK, []string{"= 2"}, ""}},
		{"off", Sysctl{Value: "0"}, want{OK, []string{"= 0"}, "-"}},
		{"missing", Sysctl{Err: fs.ErrNotExist}, want{Skip, []string{"not readable"}, "-"}},
		{"denied", Sysctl{Err: os.ErrPermission}, want{Skip, []string{"permission denied"}, "-"}},
	} {
		t.Run(tc.name, func(t *testing.T) { assertCheck(t, CheckTCPTimestamps(tc.v), tc.want) })
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("../../windows/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestCheckWindows(t *testing.T) {
	ts4, ts6 := fixture(t, "netsh_ipv4_tailscale.txt"), fixture(t, "netsh_ipv6_tailscale.txt")
	for _, tc := range []struct {
		name string
		out  WindowsOutput
		want want
	}{
		{"tailscale for windows", WindowsOutput{IPv4: ts4, IPv6: ts6},
			want{OK, []string{"Tailscale pulls eth0 down to 1280", "smallest connected adapter",
				"ipv4 Ethernet mtu 1500, connected", "ipv4 Tailscale mtu 1280, connected", "ipv6 Teredo Tunneling Pseudo-Interface mtu 1280, disconnected"}, "-"}},
		{"german vpn, no ipv6", WindowsOutput{IPv4: fixture(t, "netsh_ipv4_vpn_de.txt"), IPv6Err: errors.New("exit code 1")},
			want{OK, []string{"Cisco AnyConnect pulls eth0 down to 1300", "ipv6 list unavailable: exit code 1"}, "-"}},
		{"offline", WindowsOutput{IPv4: fixture(t, "netsh_ipv4_offline.txt"), IPv6Err: errors.New("exit code 1")},
			want{OK, []string{"vEthernet (WSL) (MTU 1500) is the only connected adapter", "ipv4 Wi-Fi mtu 1500, disconnected"}, "-"}},
		{"mirrored", WindowsOutput{IPv4: ts4, IPv6: ts6, NetworkingMode: "mirrored"},
			want{OK, []string{"mirrored networking", "ipv4 Tailscale mtu 1280"}, "-"}},
		{"netsh failed", WindowsOutput{IPv4Err: &windows.RunError{Name: "netsh.exe", ExitCode: 1, Output: "The following command was not found"}},
			want{Warn, []string{"netsh.exe interface ipv4 show subinterfaces", "exit code 1"}, "WSL interop"}},
		{"garbage", WindowsOutput{IPv4: []byte("<3>WSL (123) ERROR: UtilAcceptVsock")},
			want{Warn, []string{"no table"}, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) { assertCheck(t, CheckWindows(tc.out), tc.want) })
	}
}

func TestRender(t *testing.T) {
	checks := []Check{
		{Name: "environment", Status: OK, Detail: "WSL2, networking mode nat"},
		{Name: "plan", Status: Fail, Detail: "1 change pending\neth0: mtu 1280 → 1360", Remedy: "run `wslmtu fix`"},
		{Name: "tcp timestamps", Status: Warn, Detail: "= 1", Remedy: "sysctl"},
		{Name: "windows adapters", Status: Skip, Detail: "not WSL", Remedy: "never shown"},
	}
	var b strings.Builder
	if err := WriteText(&b, checks); err != nil {
		t.Fatal(err)
	}
	want := "✓ environment: WSL2, networking mode nat\n" +
		"✗ plan: 1 change pending\n" +
		"    eth0: mtu 1280 → 1360\n" +
		"  → run `wslmtu fix`\n" +
		"! tcp timestamps: = 1\n" +
		"  → sysctl\n" +
		"- windows adapters: not WSL\n" +
		"unhealthy: 1 check failed\n"
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := WriteJSON(&b, checks[:1]); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{
  "healthy": true,
  "checks": [
    {
      "name": "environment",
      "status": "ok",
      "detail": "WSL2, networking mode nat"
    }
  ]
}
`
	if b.String() != wantJSON {
		t.Errorf("json:\n%s\nwant:\n%s", b.String(), wantJSON)
	}
}

// Path checks: ok passes, broken with the plan in force fails with the
// side and its remedy, not fixed yet or not checkable only warns.
func TestCheckPaths(t *testing.T) {
	need := func(h string) fix.PathNeed {
		return fix.PathNeed{Host: h, Interface: "eth0", Size: 1360, Why: "outside the tunnels"}
	}
	checks := CheckPaths([]fix.PathCheck{
		{PathNeed: need("a"), Largest: 1360, Verdict: fix.PathOK},
		{PathNeed: need("b"), Largest: 1280, Verdict: fix.PathBroken, Side: fix.SideWindows, Evidence: "packets up to 1280 bytes cross"},
		{PathNeed: need("c"), Largest: 1216, Verdict: fix.PathBroken, Side: fix.SideNotFixed},
		{PathNeed: need("d"), Largest: -1, Verdict: fix.PathError, Evidence: "no route to d"},
	})
	want := []Status{OK, Fail, Warn, Warn}
	for i, c := range checks {
		if c.Status != want[i] || c.Name != NamePath+" "+string(rune('a'+i)) {
			t.Errorf("check %d: %+v, want %s", i, c, want[i])
		}
	}
	if c := checks[1]; !strings.Contains(c.Detail, "must carry 1360 bytes") || !strings.Contains(c.Detail, "largest that crossed: 1280 bytes") ||
		!strings.Contains(c.Detail, "likely side: Windows adapter") || !strings.Contains(c.Remedy, `outer_scope = "tunnel"`) {
		t.Errorf("broken path: %+v", c)
	}
}
