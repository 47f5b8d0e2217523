package fix

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
	"github.com/wslmtu/wslmtu/internal/testenv/firewalltest"
)

// The planner takes its MSS from internal/tunnel: floor16(outer − 80) minus
// the family's IP and TCP headers, the largest MSS whose padded segments
// still fit the outer MTU.
func TestClampMSSTable(t *testing.T) {
	tests := []struct{ outer, v4, v6 int }{
		{1280, 1160, 1140}, // the bug report's eth0: 1180 was too much
		{1300, 1176, 1156},
		{1340, 1208, 1188},
		{1360, 1240, 1220}, // raise-outer's 1280 + 80: the tunnel's own MSS
		{1400, 1272, 1252},
		{1420, 1288, 1268},
		{1480, 1352, 1332},
		{1500, 1368, 1348},
	}
	for _, tt := range tests {
		m := NewPlan(mssTestState(tt.outer, "tailscale0"), Record{}, clampCfg(config.StrategyOff, "tailscale0")).MSS
		if m.MSS4 != tt.v4 || m.MSS6 != tt.v6 {
			t.Errorf("outer %d: MSS %d/%d, want %d/%d", tt.outer, m.MSS4, m.MSS6, tt.v4, tt.v6)
		}
	}
	// Every outer MTU in the range: the padded packet fits with the 80-byte
	// overhead, and a larger MSS would not (it is the largest such value).
	headers := map[firewall.Family]int{firewall.IPv4: 40, firewall.IPv6: 60}
	for outer := 1280; outer <= 1500; outer++ {
		m := NewPlan(mssTestState(outer, "tailscale0"), Record{}, clampCfg(config.StrategyOff, "tailscale0")).MSS
		for _, f := range firewall.Families {
			mss := m.MSS4
			if f == firewall.IPv6 {
				mss = m.MSS6
			}
			packet := mss + headers[f]
			if packet%16 != 0 || packet+WireGuardOverhead > outer {
				t.Fatalf("outer %d %s: mss %d gives packet %d, which does not fit padded", outer, f, mss, packet)
			}
			if next := packet + 16; next+WireGuardOverhead <= outer {
				t.Fatalf("outer %d %s: mss %d is not the largest (%d would fit)", outer, f, mss, next-headers[f])
			}
		}
	}
}

func mssTestState(outer int, tunnels ...string) detect.State {
	eth0 := detect.Link{Name: "eth0", Index: 2, MTU: outer}
	st := detect.State{Env: detect.Environment{WSL: true, Version: 2, NetworkingMode: "nat"}, Outer: &eth0,
		Links: []detect.Link{eth0}}
	for i, name := range tunnels {
		l := detect.Link{Name: name, Index: 3 + i, MTU: 1280, Kind: "tun"}
		st.Links = append(st.Links, l)
		st.Tunnels = append(st.Tunnels, l)
	}
	return st
}

func clampCfg(strategy config.Strategy, tunnels ...string) config.Config {
	cfg := config.Default()
	cfg.MTUStrategy = strategy
	cfg.MSSClamp = true
	if len(tunnels) > 0 {
		cfg.Tunnels = tunnels
	}
	return cfg
}

func TestPlanMSSAloneListsTheExactRules(t *testing.T) {
	p := NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff, "tailscale0"))
	if p.MSS == nil || p.MSS.MSS4 != 1160 || p.MSS.MSS6 != 1140 {
		t.Fatalf("MSS part = %+v, want 1160/1140", p.MSS)
	}
	why4 := "(eth0 1280: floor16(1280 − 80) − 40, WireGuard pads to 16 bytes)"
	why6 := "(eth0 1280: floor16(1280 − 80) − 60, WireGuard pads to 16 bytes)"
	want := strings.Join([]string{
		"mss clamp: add rules (iptables): IPv4 1160, IPv6 1140",
		"  iptables mangle PREROUTING: -p tcp -j WSLMTU-IN",
		"  iptables mangle POSTROUTING: -p tcp -j WSLMTU-OUT",
		"  iptables mangle WSLMTU-IN: -i tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1161:65535 -j TCPMSS --set-mss 1160 " + why4,
		"  iptables mangle WSLMTU-OUT: -o tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1161:65535 -j TCPMSS --set-mss 1160 " + why4,
		"  ip6tables mangle PREROUTING: -p tcp -j WSLMTU-IN",
		"  ip6tables mangle POSTROUTING: -p tcp -j WSLMTU-OUT",
		"  ip6tables mangle WSLMTU-IN: -i tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1141:65535 -j TCPMSS --set-mss 1140 " + why6,
		"  ip6tables mangle WSLMTU-OUT: -o tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1141:65535 -j TCPMSS --set-mss 1140 " + why6,
		"",
	}, "\n")
	if got := p.MSS.String(); got != want {
		t.Errorf("MSS part prints\n%s\nwant\n%s", got, want)
	}
	if p.Empty() {
		t.Error("a plan with rules to add is empty")
	}
	if len(p.Actions) != 0 {
		t.Errorf("mtu_strategy off planned MTU actions: %v", p.Actions)
	}
	if !strings.Contains(strings.Join(p.Warnings, "\n"), "TCP only") {
		t.Errorf("no TCP-only warning with mtu_strategy off: %q", p.Warnings)
	}
}

func TestPlanMSSVariants(t *testing.T) {
	override := clampCfg(config.StrategyOff, "tailscale0")
	override.MSS = 1300
	tests := []struct {
		name       string
		st         detect.State
		cfg        config.Config
		v4, v6     int
		why        string   // substring of the IPv4 reason
		interfaces []string // of the IN rules, per family
	}{
		{"on top of raise-outer the MSS fits the raised eth0", mssTestState(1280, "tailscale0"), clampCfg(config.RaiseOuter),
			1240, 1220, "eth0 1360 after the mtu change: floor16(1360 − 80) − 40", []string{"tailscale0", "wg+", "wt+"}},
		{"lower-tunnel leaves eth0, so the MSS follows eth0", mssTestState(1400, "tailscale0"), clampCfg(config.LowerTunnel, "tailscale0"),
			1272, 1252, "eth0 1400: floor16(1400 − 80) − 40", []string{"tailscale0"}},
		{"mss in the config is the IPv4 MSS, IPv6 gets 20 less", mssTestState(1280, "tailscale0"), override,
			1300, 1280, "mss = 1300 in the config", []string{"tailscale0"}},
		{"a prefix pattern becomes an iptables wildcard, present or not", mssTestState(1500), clampCfg(config.StrategyOff, "wg*"),
			1368, 1348, "eth0 1500", []string{"wg+"}},
		{"other globs expand to the tunnels present", mssTestState(1280, "ts0", "ts1", "wg0"), clampCfg(config.StrategyOff, "ts?"),
			1160, 1140, "eth0 1280", []string{"ts0", "ts1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPlan(tt.st, Record{}, tt.cfg)
			m := p.MSS
			if m == nil {
				t.Fatalf("no MSS part; plan:\n%s", p)
			}
			if m.MSS4 != tt.v4 || m.MSS6 != tt.v6 {
				t.Errorf("MSS %d/%d, want %d/%d", m.MSS4, m.MSS6, tt.v4, tt.v6)
			}
			if !strings.Contains(m.Why4, tt.why) {
				t.Errorf("reason %q lacks %q", m.Why4, tt.why)
			}
			for _, f := range firewall.Families {
				var got []string
				for _, r := range m.wanted(f) {
					if r.Chain == firewall.ChainIn {
						got = append(got, r.Spec[1])
					}
				}
				if !slices.Equal(got, tt.interfaces) {
					t.Errorf("%s IN rules on %v, want %v", f, got, tt.interfaces)
				}
			}
		})
	}
}

func TestPlanMSSOffOrImpossible(t *testing.T) {
	cfg := config.Default()
	cfg.MTUStrategy = config.StrategyOff
	if p := NewPlan(mssTestState(1280, "tailscale0"), Record{}, cfg); p.MSS != nil || !p.Empty() {
		t.Errorf("mss_clamp off planned %v", p.MSS)
	}
	st := mssTestState(1280, "tailscale0")
	st.Outer = nil
	p := NewPlan(st, Record{}, clampCfg(config.StrategyOff))
	if m := p.MSS; m == nil || m.Refused == "" || len(m.Rules) != 0 || m.NeedsChange() ||
		!strings.Contains(strings.Join(p.Warnings, "\n"), "no outer interface") {
		t.Errorf("without an outer interface: MSS %+v, warnings %q", p.MSS, p.Warnings)
	}
	st.Env = detect.Environment{WSL: true, Version: 1, Note: "WSL1"}
	if p := NewPlan(st, Record{}, clampCfg(config.RaiseOuter)); p.MSS != nil {
		t.Errorf("WSL1 planned MSS clamping: %v", p.MSS)
	}
}

// An outer MTU too small for any MSS a peer must accept
// (536) is refused with the reason, not turned into --set-mss -40 or 72.
func TestPlanMSSRefusesAnMSSBelowTheMinimum(t *testing.T) {
	tests := []struct {
		outer, mss int
		warning    string // "" = accepted
	}{
		{68, 0, "eth0 mtu 68 gives an MSS of -56 (IPv4) and -76 (IPv6) through the tunnel, below the minimum 536"},
		{200, 0, "eth0 mtu 200 gives an MSS of 72 (IPv4) and 52 (IPv6) through the tunnel, below the minimum 536"},
		{687, 0, "eth0 mtu 687 gives an MSS of 552 (IPv4) and 532 (IPv6)"},
		{688, 0, ""}, // 568 and 548
		{1280, 540, "mss = 540 in the config gives IPv6 segments an MSS of 520, below the minimum 536; set mss to at least 556"},
		{1280, 556, ""},
	}
	for _, tt := range tests {
		cfg := clampCfg(config.StrategyOff, "tailscale0")
		cfg.MSS = tt.mss
		p := NewPlan(mssTestState(tt.outer, "tailscale0"), Record{}, cfg)
		m := p.MSS
		if tt.warning == "" {
			if m == nil || m.Refused != "" || min(m.MSS4, m.MSS6) < 536 || len(m.Rules) == 0 {
				t.Errorf("outer %d, mss %d: %+v, want rules with an MSS ≥ 536", tt.outer, tt.mss, m)
			}
			continue
		}
		warnings := strings.Join(p.Warnings, "\n")
		if m == nil || m.State != MSSUnavailable || len(m.Rules) != 0 || m.NeedsChange() || !strings.Contains(warnings, tt.warning) ||
			!strings.Contains(p.String(), "mss clamp: cannot be applied (") {
			t.Errorf("outer %d, mss %d: MSS part %+v, warnings %q; want it refused with %q\n%s", tt.outer, tt.mss, m, warnings, tt.warning, p)
		}
	}

	// Refused means nothing is read or changed in the firewall, and no
	// empty chain is left: fix says clamping is unavailable and why.
	fake := firewalltest.New(firewall.NFT)
	h, links := fakeHost(t, fake)
	links.Reset("eth0", 200)
	cfg := clampCfg(config.StrategyOff, "tailscale0")
	cfg.AssumeWSL = true
	r, err := h.Fix(cfg)
	if !errors.Is(err, firewall.ErrUnavailable) || !strings.Contains(err.Error(), "eth0 mtu 200 gives an MSS of 72") {
		t.Errorf("fix: %v", err)
	}
	if calls := fake.Calls(); len(calls) != 0 || fake.All() != firewalltest.New(firewall.NFT).All() || r.MSS != nil {
		t.Errorf("a refused clamp ran %q and left\n%s", calls, fake.All())
	}
}

// fakeHost is a WSL host with eth0 and tailscale0 at 1280 whose firewall
// is the fake (nil: a host without iptables support).
func fakeHost(t *testing.T, fake *firewalltest.Fake) (Host, *fakekernel.Kernel) {
	k := fakekernel.NewWSL(1280, 1280)
	src := detect.Sources{Root: fstest.MapFS{}, Getenv: func(string) string { return "" }}
	h := Host{Sources: src, Links: k, Kernel: k, Store: Store{Dir: t.TempDir()}}
	if fake != nil {
		h.Firewall = fake.Open
	}
	return h, k
}

// someoneElses is a mangle table holding another program's rule.
const someoneElses = "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" +
	"-A PREROUTING -i eth0 -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n"

func TestSyncIsIdempotentRepairsAndRemovesCleanly(t *testing.T) {
	fake := firewalltest.New(firewall.NFT)
	// Someone else's rule in the same table must survive everything.
	fake.Set(firewall.NFT, firewall.IPv4, someoneElses)
	before := fake.All()
	h, _ := fakeHost(t, fake)
	plan := func() Plan { return NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff)) }
	check := func() *MSSPlan {
		p := plan()
		h.checkFirewall(&p)
		return p.MSS
	}

	if m := check(); m.State != MSSAbsent {
		t.Fatalf("fresh table: state %q, want absent", m.State)
	}
	if c, err := syncCopy(h, plan()); err != nil || len(c.Done) == 0 {
		t.Fatalf("first sync: %v, %v", c, err)
	}
	after := fake.All()
	restores := fake.Count("restore")
	for i := 0; i < 2; i++ {
		c, err := syncCopy(h, plan())
		if err != nil || len(c.Done) != 0 || fake.Count("restore") != restores {
			t.Fatalf("sync #%d changed %v (err %v), %d restores", i+2, c, err, fake.Count("restore")-restores)
		}
	}
	if m := check(); m.State != MSSInSync {
		t.Fatalf("after sync: state %q (%s)", m.State, m.Detail)
	}
	set, _ := firewall.Parse(fake.Save(firewall.NFT, firewall.IPv4))
	if got := set.Table(firewall.Mangle).Chain("PREROUTING").Rules; !slices.Equal(got, []string{"-p tcp -j WSLMTU-IN", "-i eth0 -j MARK --set-xmark 0x1/0xffffffff"}) {
		t.Errorf("PREROUTING = %q, want our jump first and the other rule kept", got)
	}

	// Repairs: a deleted rule, an edited one, a duplicated jump.
	v4, v6 := fake.Save(firewall.NFT, firewall.IPv4), fake.Save(firewall.NFT, firewall.IPv6)
	v4 = strings.Replace(v4, "-A WSLMTU-IN -i tailscale0", "-A WSLMTU-IN -i gone0", 1)
	v4 = regexp.MustCompile(`-A WSLMTU-IN -i wg\+[^\n]*\n`).ReplaceAllString(v4, "")
	v4 = strings.Replace(v4, "-A POSTROUTING -p tcp -j WSLMTU-OUT\n", "-A POSTROUTING -p tcp -j WSLMTU-OUT\n-A POSTROUTING -p tcp -j WSLMTU-OUT\n", 1)
	v6 = strings.Replace(v6, "--set-mss 1140", "--set-mss 1400", 1)
	fake.Set(firewall.NFT, firewall.IPv4, v4)
	fake.Set(firewall.NFT, firewall.IPv6, v6)
	if m := check(); m.State != MSSDiffers {
		t.Fatalf("after tampering: state %q, want differs", m.State)
	}
	if _, err := syncCopy(h, plan()); err != nil {
		t.Fatal(err)
	}
	if got := fake.All(); got != after {
		t.Errorf("repair left\n%s\nwant\n%s", got, after)
	}

	if _, err := h.revertFirewall(); err != nil {
		t.Fatal(err)
	}
	if got := fake.All(); got != before {
		t.Errorf("remove left\n%s\nwant\n%s", got, before)
	}
	if p := NewPlan(mssTestState(1280, "tailscale0"), Record{}, config.Default()); func() bool { h.checkFirewall(&p); return p.MSS != nil }() {
		t.Errorf("after remove: %+v", p.MSS)
	}
}

func TestSyncReportsAMissingTCPMSSTargetAsUnavailable(t *testing.T) {
	fake := firewalltest.New(firewall.NFT)
	fake.FailRestore = func(tool string, args []string, script string) error {
		if strings.Contains(script, "TCPMSS") {
			return errors.New("iptables-nft-restore v1.8.9 (nf_tables): Couldn't load target `TCPMSS':No such file or directory")
		}
		return nil
	}
	h, _ := fakeHost(t, fake)
	_, err := syncCopy(h, NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff)))
	if !errors.Is(err, firewall.ErrUnavailable) || !strings.Contains(err.Error(), "the MTU part still works") {
		t.Errorf("err = %v, want firewall.ErrUnavailable with a clear message", err)
	}
	if strings.Contains(fake.All(), "WSLMTU") {
		t.Errorf("a failed clamp left chains behind:\n%s", fake.All())
	}
}

func TestHostFixRecordsRepairsAndReverts(t *testing.T) {
	fake := firewalltest.New(firewall.NFT)
	before := fake.All()
	h, links := fakeHost(t, fake)
	cfg := clampCfg(config.RaiseOuter, "tailscale0")
	cfg.AssumeWSL = true

	r, err := h.Fix(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if links.MTU("eth0") != 1360 || r.MSS == nil || len(r.MSS.Done) == 0 {
		t.Fatalf("fix: eth0 %d, mss %v", links.MTU("eth0"), r.MSS)
	}
	if !strings.Contains(fake.Save(firewall.NFT, firewall.IPv4), "--set-mss 1240") {
		t.Errorf("the clamp does not follow the raised eth0:\n%s", fake.Save(firewall.NFT, firewall.IPv4))
	}
	rec, _ := h.Store.loadFirewallRecord()
	if rec == nil || rec.Backend != firewall.NFT || !slices.Equal(rec.Chains, []string{firewall.ChainIn, firewall.ChainOut}) ||
		!slices.Equal(rec.CreatedTables, firewall.Families) {
		t.Fatalf("record %+v", rec)
	}
	if ok, err := mssInSync(h, cfg); !ok || err != nil {
		t.Errorf("MSSInSync after fix = %v, %v", ok, err)
	}
	r, err = h.Fix(cfg)
	if err != nil || len(r.MSS.Done) != 0 || !r.Healthy() {
		t.Errorf("second fix changed %v (err %v)", r.MSS, err)
	}
	fake.Set(firewall.NFT, firewall.IPv6, regexp.MustCompile(`-A WSLMTU-IN [^\n]*\n`).ReplaceAllString(fake.Save(firewall.NFT, firewall.IPv6), ""))
	if ok, _ := mssInSync(h, cfg); ok {
		t.Error("MSSInSync misses a flushed chain")
	}
	if r, _ := h.Plan(cfg); r.Healthy() {
		t.Errorf("status calls a flushed chain healthy:\n%s", r)
	}
	if _, err := h.Fix(cfg); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mssInSync(h, cfg); !ok {
		t.Error("fix did not repair the flushed chain")
	}

	reverted, _, err := h.Revert()
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.All(); got != before {
		t.Errorf("revert left\n%s\nwant\n%s", got, before)
	}
	if links.MTU("eth0") != 1280 || len(reverted) < 2 {
		t.Errorf("revert: eth0 %d, reverted %v", links.MTU("eth0"), reverted)
	}
	if rec, _, _ := h.Store.LoadRecord(); len(rec.Links) != 0 {
		t.Errorf("record after revert: %+v", rec)
	}
	if rec, err := h.Store.loadFirewallRecord(); rec != nil || err != nil {
		t.Errorf("firewall record after revert: %+v, %v", rec, err)
	}
}

// Our chains go when clamping is off, recorded or not.
func TestHostTurningClampOffRemovesOurRules(t *testing.T) {
	for _, leftover := range []bool{false, true} {
		name := "recorded"
		if leftover {
			name = "left over without a record"
		}
		t.Run(name, func(t *testing.T) {
			fake := firewalltest.New(firewall.NFT)
			fake.Set(firewall.NFT, firewall.IPv4, someoneElses)
			before := fake.All()
			h, _ := fakeHost(t, fake)
			cfg := clampCfg(config.StrategyOff, "tailscale0")
			cfg.AssumeWSL = true
			if _, err := h.Fix(cfg); err != nil {
				t.Fatal(err)
			}
			if leftover {
				os.Remove(filepath.Join(h.Store.Dir, "firewall.json"))
			}
			cfg.MSSClamp = false
			r, err := h.Plan(cfg)
			if err != nil || r.Plan.MSS == nil || r.Plan.MSS.Clamp || r.Plan.MSS.State != MSSPresent || r.Healthy() {
				t.Fatalf("plan with clamping turned off: %v (err %v)", r.Plan.MSS, err)
			}
			if !strings.Contains(r.Plan.String(), "mss clamp off: remove chains WSLMTU-IN and WSLMTU-OUT") {
				t.Errorf("plan does not say it removes the chains:\n%s", r.Plan)
			}
			r, err = h.Fix(cfg)
			if err != nil || r.MSS == nil || !strings.Contains(r.MSS.String(), "mss clamp: iptables mangle: deleted chain WSLMTU-IN") {
				t.Fatalf("fix: %v, %v", r.MSS, err)
			}
			if strings.Contains(fake.All(), "WSLMTU") {
				t.Errorf("our chains are still there:\n%s", fake.All())
			}
			if !leftover {
				// The IPv6 table was ours alone: it goes too.
				if got := fake.All(); got != before {
					t.Errorf("left\n%s\nwant\n%s", got, before)
				}
			}
			if rec, _ := h.Store.loadFirewallRecord(); rec != nil {
				t.Errorf("the record still lists %+v", rec)
			}
			if r, _ := h.Plan(cfg); r.Plan.MSS != nil || !r.Healthy() {
				t.Errorf("after removal the plan still has %v", r.Plan.MSS)
			}
			fake.ResetCalls()
			if r, err := h.Fix(cfg); err != nil || r.MSS != nil || len(fake.Calls()) != 0 {
				t.Errorf("with nothing of ours left, fix reported %v (err %v) and ran %q; want no process at all", r.MSS, err, fake.Calls())
			}
		})
	}
}

func TestHostWithoutIPTablesStillFixesTheMTU(t *testing.T) {
	none := firewalltest.New(firewall.NFT)
	for _, f := range []string{"iptables", "ip6tables"} {
		for _, b := range []string{"-nft", "-legacy", ""} {
			for _, k := range []string{"", "-save", "-restore"} {
				none.Missing[f+b+k] = true
			}
		}
	}
	for name, fake := range map[string]*firewalltest.Fake{
		"MSS clamping unavailable: iptables is not installed":   none,
		"MSS clamping unavailable: no iptables support on this": nil,
	} {
		h, links := fakeHost(t, fake)
		cfg := clampCfg(config.RaiseOuter, "tailscale0")
		cfg.AssumeWSL, cfg.OuterScope = true, config.ScopeAll
		r, err := h.Plan(cfg)
		if err != nil || !strings.Contains(r.Plan.String(), name) {
			t.Errorf("dry run does not say %q:\n%s", name, r.Plan)
		}
		r, err = h.Fix(cfg)
		if !errors.Is(err, firewall.ErrUnavailable) {
			t.Errorf("err = %v, want firewall.ErrUnavailable", err)
		}
		if links.MTU("eth0") != 1360 || len(r.Changes) != 1 {
			t.Errorf("the MTU part was not applied: eth0 %d, changes %v", links.MTU("eth0"), r.Changes)
		}
		// Without clamping, a host without iptables is simply fine.
		cfg.MSSClamp = false
		if r, err := h.Plan(cfg); err != nil || r.Plan.MSS != nil || len(r.Plan.Warnings) != 0 {
			t.Errorf("clamping off, no iptables: %v %q (err %v)", r.Plan.MSS, r.Plan.Warnings, err)
		}
	}
}

// The record lives in firewall.json; a version 1 revert.json kept it under
// "mss", which is read until firewall.json exists.
func TestFirewallRecordMigratesFromRevertJSON(t *testing.T) {
	fake := firewalltest.New(firewall.NFT)
	h, _ := fakeHost(t, fake)
	cfg := clampCfg(config.StrategyOff, "tailscale0")
	cfg.AssumeWSL = true
	// A v1 host: our chains in legacy, recorded in revert.json.
	legacy := firewalltest.New(firewall.Legacy)
	lh, _ := fakeHost(t, legacy)
	if _, err := syncCopy(lh, NewPlan(mssTestState(1280, "tailscale0"), Record{}, cfg)); err != nil {
		t.Fatal(err)
	}
	fake.Set(firewall.Legacy, firewall.IPv4, legacy.Save(firewall.Legacy, firewall.IPv4))
	fake.Set(firewall.Legacy, firewall.IPv6, legacy.Save(firewall.Legacy, firewall.IPv6))
	v1 := `{"version": 1, "original_mtu": {"eth0": 1280}, "mss": {"backend": "legacy", "families": ["ipv4", "ipv6"], ` +
		`"table": "mangle", "chains": ["WSLMTU-IN", "WSLMTU-OUT"], "jumps": ["PREROUTING -p tcp -j WSLMTU-IN", "POSTROUTING -p tcp -j WSLMTU-OUT"]}}`
	os.WriteFile(filepath.Join(h.Store.Dir, "revert.json"), []byte(v1), 0o644)

	rec, err := h.Store.loadFirewallRecord()
	if err != nil || rec == nil || rec.Backend != firewall.Legacy {
		t.Fatalf("v1 record: %+v, %v", rec, err)
	}
	p := NewPlan(mssTestState(1280, "tailscale0"), Record{}, cfg)
	h.checkFirewall(&p)
	if p.MSS.State != MSSInSync || !strings.HasPrefix(p.MSS.Backend, "legacy: our chains are there") {
		t.Errorf("the recorded backend is not used: %+v", p.MSS)
	}
	out, err := h.revertFirewall()
	if err != nil || strings.Contains(fake.All(), "WSLMTU") {
		t.Fatalf("revert: %v, %v\n%s", out, err, fake.All())
	}
	if rec, err := h.Store.loadFirewallRecord(); rec != nil || err != nil {
		t.Errorf("after revert the v1 record is read again: %+v, %v", rec, err)
	}

	for content, want := range map[string]string{
		`{"version": 7}`: "unknown version 7",
		`{}`:             "unknown version 0",
		`{half`:          "is damaged",
	} {
		os.WriteFile(filepath.Join(h.Store.Dir, "firewall.json"), []byte(content), 0o644)
		if _, err := h.Store.loadFirewallRecord(); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "firewall.json") {
			t.Errorf("firewall.json %s: %v, want an error naming it and saying %q", content, err, want)
		}
	}
}

// The firewall has its own lock: a sync proceeds while the links lock (the
// one MTU repairs take) is held, so neither waits for the other.
func TestSyncFirewallDoesNotTakeTheLinksLock(t *testing.T) {
	fake := firewalltest.New(firewall.NFT)
	h, _ := fakeHost(t, fake)
	links, err := h.Store.Lock(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer links.Release()
	done := make(chan error, 1)
	go func() {
		_, err := syncCopy(h, NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff)))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SyncFirewall waited for the links lock")
	}
}

// The periodic check of a firewall nobody touched starts no process: the
// nf_tables generation says the last read is still exact. Any change, by
// anyone, makes it read again.
func TestCheckInSyncStartsNoProcessWhileNothingChanged(t *testing.T) {
	fake := firewalltest.New(firewall.NFT)
	h, _ := fakeHost(t, fake)
	plan := func() Plan { return NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff)) }
	if _, err := syncCopy(h, plan()); err != nil {
		t.Fatal(err)
	}
	check := func() *MSSPlan {
		p := plan()
		h.checkFirewall(&p)
		return p.MSS
	}
	check()
	fake.ResetCalls()
	if m := check(); m.State != MSSInSync || len(fake.Calls()) != 0 {
		t.Errorf("unchanged: state %q, started %q", m.State, fake.Calls())
	}
	if c, err := syncCopy(h, plan()); err != nil || len(c.Done) != 0 || len(fake.Calls()) != 0 {
		t.Errorf("sync of an unchanged firewall: %v, %v, started %q", c, err, fake.Calls())
	}
	fake.Set(firewall.NFT, firewall.IPv4, regexp.MustCompile(`-A WSLMTU-IN [^\n]*\n`).ReplaceAllString(fake.Save(firewall.NFT, firewall.IPv4), ""))
	if m := check(); m.State != MSSDiffers || fake.Count("save") == 0 {
		t.Errorf("after a change: state %q, started %q", m.State, fake.Calls())
	}
}

// ZeroTier is never clamped (it fills its UDP payloads whatever the segment
// size), and a kernel WireGuard device is, whatever its name.
func TestClampInterfacesByKind(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	k.AddLink(detect.Link{Name: "corp", MTU: 1420, Kind: "wireguard", Up: true})
	k.AddLink(detect.Link{Name: "zt3jnkd6ic", MTU: 2800, Kind: "tun", Up: true})
	cfg := config.Default()
	cfg.MSSClamp = true
	st := observe(t, k, "nat", cfg)
	if got := clampInterfaces(st, cfg); !slices.Equal(got, []string{"tailscale0", "wg+", "wt+", "corp"}) {
		t.Errorf("clamped on %q", got)
	}
}
