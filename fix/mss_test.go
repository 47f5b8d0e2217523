package fix

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/fakekernel"
)

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
		if got := ClampMSS(tt.outer, IPv4); got != tt.v4 {
			t.Errorf("ClampMSS(%d, ipv4) = %d, want %d", tt.outer, got, tt.v4)
		}
		if got := ClampMSS(tt.outer, IPv6); got != tt.v6 {
			t.Errorf("ClampMSS(%d, ipv6) = %d, want %d", tt.outer, got, tt.v6)
		}
	}
	// Every outer MTU in the range: the padded packet fits with the 80-byte
	// overhead, and a larger MSS would not (it is the largest such value).
	for outer := 1280; outer <= 1500; outer++ {
		for _, f := range Families {
			mss := ClampMSS(outer, f)
			packet := mss + f.tcpHeaders()
			if packet%16 != 0 || packet+WireGuardOverhead > outer {
				t.Fatalf("outer %d %s: mss %d gives packet %d, which does not fit padded", outer, f, mss, packet)
			}
			if next := packet + 16; next+WireGuardOverhead <= outer {
				t.Fatalf("outer %d %s: mss %d is not the largest (%d would fit)", outer, f, mss, next-f.tcpHeaders())
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
			1240, 1220, "eth0 1360 after the mtu change: floor16(1360 − 80) − 40", []string{"tailscale0", "wg+", "wt+", "zt+"}},
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
			for _, f := range Families {
				var got []string
				for _, r := range filterChain(m.wanted(f), ChainIn) {
					got = append(got, r.Spec[1])
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
	if p.MSS != nil || !strings.Contains(strings.Join(p.Warnings, "\n"), "no outer interface") {
		t.Errorf("without an outer interface: MSS %v, warnings %q", p.MSS, p.Warnings)
	}
	st.Env = detect.Environment{WSL: true, Version: 1, Note: "WSL1"}
	if p := NewPlan(st, Record{}, clampCfg(config.RaiseOuter)); p.MSS != nil {
		t.Errorf("WSL1 planned MSS clamping: %v", p.MSS)
	}
}

// fakeIPTables keeps one family's mangle table as `iptables -S` lines.
type fakeIPTables struct {
	chains map[string][]string // chain → its "-A" lines
	order  []string
	calls  int // changing calls
}

func newFakeIPTables() *fakeIPTables {
	f := &fakeIPTables{chains: map[string][]string{}}
	for _, c := range []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"} {
		f.chains[c] = nil
		f.order = append(f.order, c)
	}
	return f
}

func builtin(chain string) bool {
	return strings.ToUpper(chain) == chain && !strings.Contains(chain, "-")
}

func (f *fakeIPTables) save() string {
	var b strings.Builder
	for _, c := range f.order {
		if _, ok := f.chains[c]; ok {
			fmt.Fprintf(&b, ":%s\n", c)
		}
	}
	for _, c := range f.order {
		for _, l := range f.chains[c] {
			fmt.Fprintln(&b, l)
		}
	}
	return b.String()
}

func (f *fakeIPTables) List(table, chain string) ([]string, error) {
	rules, ok := f.chains[chain]
	if !ok || table != MangleTable {
		return nil, fmt.Errorf("iptables: No chain/target/match by that name")
	}
	head := "-N " + chain
	if builtin(chain) {
		head = "-P " + chain + " ACCEPT"
	}
	return append([]string{head}, rules...), nil
}

func (f *fakeIPTables) ChainExists(table, chain string) (bool, error) {
	_, ok := f.chains[chain]
	return ok, nil
}

func (f *fakeIPTables) NewChain(table, chain string) error {
	f.calls++
	if _, ok := f.chains[chain]; ok {
		return fmt.Errorf("chain %s exists", chain)
	}
	f.chains[chain] = nil
	f.order = append(f.order, chain)
	return nil
}

func (f *fakeIPTables) line(chain string, spec []string) (string, error) {
	if _, ok := f.chains[chain]; !ok {
		return "", fmt.Errorf("iptables: No chain/target/match by that name")
	}
	return "-A " + chain + " " + strings.Join(spec, " "), nil
}

func (f *fakeIPTables) Append(table, chain string, spec ...string) error {
	f.calls++
	l, err := f.line(chain, spec)
	if err == nil {
		f.chains[chain] = append(f.chains[chain], l)
	}
	return err
}

func (f *fakeIPTables) Insert(table, chain string, pos int, spec ...string) error {
	f.calls++
	l, err := f.line(chain, spec)
	if err == nil {
		f.chains[chain] = slices.Insert(f.chains[chain], pos-1, l)
	}
	return err
}

func (f *fakeIPTables) Delete(table, chain string, spec ...string) error {
	f.calls++
	l, err := f.line(chain, spec)
	if err != nil {
		return err
	}
	i := slices.Index(f.chains[chain], l)
	if i < 0 {
		return fmt.Errorf("iptables: Bad rule (does a matching rule exist in that chain?)")
	}
	f.chains[chain] = slices.Delete(f.chains[chain], i, i+1)
	return nil
}

func (f *fakeIPTables) DeleteById(table, chain string, id int) error {
	f.calls++
	if id < 1 || id > len(f.chains[chain]) {
		return fmt.Errorf("iptables: Index of deletion too big")
	}
	f.chains[chain] = slices.Delete(f.chains[chain], id-1, id)
	return nil
}

func (f *fakeIPTables) ClearAndDeleteChain(table, chain string) error {
	f.calls++
	delete(f.chains, chain)
	f.order = slices.DeleteFunc(f.order, func(c string) bool { return c == chain })
	return nil
}

func fakeNetfilter() (*Netfilter, map[Family]*fakeIPTables) {
	fakes := map[Family]*fakeIPTables{IPv4: newFakeIPTables(), IPv6: newFakeIPTables()}
	return &Netfilter{Backend: BackendNFT, Why: "fake", Tables: map[Family]IPTables{IPv4: fakes[IPv4], IPv6: fakes[IPv6]}}, fakes
}

func TestSyncIsIdempotentRepairsAndRemovesCleanly(t *testing.T) {
	nf, fakes := fakeNetfilter()
	// Someone else's rule in the same table must survive everything.
	fakes[IPv4].chains["PREROUTING"] = []string{"-A PREROUTING -i eth0 -j MARK --set-xmark 0x1/0xffffffff"}
	before := fakes[IPv4].save() + fakes[IPv6].save()
	m := NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff)).MSS

	if state, _, _ := nf.Check(m); state != MSSAbsent {
		t.Fatalf("fresh table: state %q, want absent", state)
	}
	if _, err := nf.Sync(m); err != nil {
		t.Fatal(err)
	}
	after := fakes[IPv4].save() + fakes[IPv6].save()
	for i := 0; i < 2; i++ {
		calls := fakes[IPv4].calls + fakes[IPv6].calls
		done, err := nf.Sync(m)
		if err != nil || len(done) != 0 || fakes[IPv4].calls+fakes[IPv6].calls != calls {
			t.Fatalf("sync #%d changed %v (err %v)", i+2, done, err)
		}
	}
	if state, detail, _ := nf.Check(m); state != MSSInSync {
		t.Fatalf("after sync: state %q (%s)", state, detail)
	}
	if got := fakes[IPv4].chains["PREROUTING"]; got[0] != "-A PREROUTING -p tcp -j WSLMTU-IN" || len(got) != 2 {
		t.Errorf("PREROUTING = %q, want our jump first and the other rule kept", got)
	}

	// Repairs: a deleted rule, an edited one, a duplicated jump.
	fakes[IPv4].chains[ChainIn] = fakes[IPv4].chains[ChainIn][1:]
	fakes[IPv6].chains[ChainOut][0] = strings.Replace(fakes[IPv6].chains[ChainOut][0], "1140", "1400", 1)
	fakes[IPv4].chains["POSTROUTING"] = append(fakes[IPv4].chains["POSTROUTING"], "-A POSTROUTING -p tcp -j WSLMTU-OUT")
	if state, _, _ := nf.Check(m); state != MSSDiffers {
		t.Fatalf("after tampering: state %q, want differs", state)
	}
	if _, err := nf.Sync(m); err != nil {
		t.Fatal(err)
	}
	if got := fakes[IPv4].save() + fakes[IPv6].save(); got != after {
		t.Errorf("repair left\n%s\nwant\n%s", got, after)
	}

	if _, err := nf.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := fakes[IPv4].save() + fakes[IPv6].save(); got != before {
		t.Errorf("remove left\n%s\nwant\n%s", got, before)
	}
	if state, _, _ := nf.Check(&MSSPlan{}); state != MSSAbsent {
		t.Errorf("after remove: state %q", state)
	}
}

func TestSyncReportsAMissingTCPMSSTargetAsUnavailable(t *testing.T) {
	nf := &Netfilter{Backend: BackendNFT, Tables: map[Family]IPTables{IPv4: noTCPMSS{newFakeIPTables()}}}
	m := NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff)).MSS
	_, err := nf.Sync(m)
	if !errors.Is(err, ErrMSSUnavailable) || !strings.Contains(err.Error(), "the MTU part still works") {
		t.Errorf("err = %v, want ErrMSSUnavailable with a clear message", err)
	}
}

type noTCPMSS struct{ *fakeIPTables }

func (n noTCPMSS) Append(table, chain string, spec ...string) error {
	if slices.Contains(spec, "TCPMSS") {
		return errors.New("iptables v1.8.9 (nf_tables): Couldn't load target `TCPMSS':No such file or directory")
	}
	return n.fakeIPTables.Append(table, chain, spec...)
}

func fakeHost(t *testing.T, open NetfilterOpener) (Host, *fakekernel.Kernel) {
	k := fakekernel.NewWSL(1280, 1280)
	src := detect.Sources{Root: fstest.MapFS{}, Getenv: func(string) string { return "" }}
	cfgScopeAll := Host{Sources: src, Links: k, Kernel: k, Store: Store{Dir: t.TempDir()}, Netfilter: open}
	return cfgScopeAll, k
}

func TestHostFixRecordsRepairsAndReverts(t *testing.T) {
	nf, fakes := fakeNetfilter()
	before := fakes[IPv4].save() + fakes[IPv6].save()
	opened := 0
	h, links := fakeHost(t, func(b Backend) (*Netfilter, error) { opened++; return nf, nil })
	cfg := clampCfg(config.RaiseOuter, "tailscale0")
	cfg.AssumeWSL = true

	r, err := h.Fix(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if links.MTU("eth0") != 1360 || r.MSS == nil || len(r.MSS.Done) == 0 {
		t.Fatalf("fix: eth0 %d, mss %v", links.MTU("eth0"), r.MSS)
	}
	if !strings.Contains(fakes[IPv4].save(), "--set-mss 1240") {
		t.Errorf("the clamp does not follow the raised eth0:\n%s", fakes[IPv4].save())
	}
	rec, _, _ := h.Store.LoadRecord()
	if rec.MSS == nil || rec.MSS.Backend != BackendNFT || !slices.Equal(rec.MSS.Chains, []string{ChainIn, ChainOut}) {
		t.Fatalf("record %+v", rec.MSS)
	}
	if ok, err := h.MSSInSync(cfg); !ok || err != nil {
		t.Errorf("MSSInSync after fix = %v, %v", ok, err)
	}
	r, err = h.Fix(cfg)
	if err != nil || len(r.MSS.Done) != 0 || !r.Healthy() {
		t.Errorf("second fix changed %v (err %v)", r.MSS, err)
	}
	fakes[IPv6].chains[ChainIn] = nil
	if ok, _ := h.MSSInSync(cfg); ok {
		t.Error("MSSInSync misses a flushed chain")
	}
	if r, _ := h.Plan(cfg); r.Healthy() {
		t.Errorf("status calls a flushed chain healthy:\n%s", r)
	}
	if _, err := h.Fix(cfg); err != nil {
		t.Fatal(err)
	}
	if ok, _ := h.MSSInSync(cfg); !ok {
		t.Error("fix did not repair the flushed chain")
	}

	reverted, _, err := h.Revert()
	if err != nil {
		t.Fatal(err)
	}
	if got := fakes[IPv4].save() + fakes[IPv6].save(); got != before {
		t.Errorf("revert left\n%s\nwant\n%s", got, before)
	}
	if links.MTU("eth0") != 1280 || len(reverted) < 2 {
		t.Errorf("revert: eth0 %d, reverted %v", links.MTU("eth0"), reverted)
	}
	if rec, _, _ := h.Store.LoadRecord(); rec.MSS != nil || len(rec.Links) != 0 {
		t.Errorf("record after revert: %+v", rec)
	}
}

func TestHostTurningClampOffRemovesOurRules(t *testing.T) {
	nf, fakes := fakeNetfilter()
	h, _ := fakeHost(t, func(Backend) (*Netfilter, error) { return nf, nil })
	cfg := clampCfg(config.StrategyOff, "tailscale0")
	cfg.AssumeWSL = true
	if _, err := h.Fix(cfg); err != nil {
		t.Fatal(err)
	}
	cfg.MSSClamp = false
	r, err := h.Plan(cfg)
	if err != nil || r.Plan.MSS == nil || r.Plan.MSS.Clamp || r.Healthy() {
		t.Fatalf("plan with clamping turned off: %v (err %v)", r.Plan.MSS, err)
	}
	if !strings.Contains(r.Plan.String(), "mss clamp off: remove chains WSLMTU-IN and WSLMTU-OUT") {
		t.Errorf("plan does not say it removes the chains:\n%s", r.Plan)
	}
	if _, err := h.Fix(cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := fakes[IPv4].chains[ChainIn]; ok {
		t.Error("our chain is still there")
	}
	if rec, _, _ := h.Store.LoadRecord(); rec.MSS != nil {
		t.Errorf("the record still lists %+v", rec.MSS)
	}
	if r, _ := h.Plan(cfg); r.Plan.MSS != nil || !r.Healthy() {
		t.Errorf("after removal the plan still has %v", r.Plan.MSS)
	}
}

func TestHostWithoutIPTablesStillFixesTheMTU(t *testing.T) {
	h, links := fakeHost(t, func(Backend) (*Netfilter, error) {
		return nil, Unavailable("iptables is not installed (apt install iptables)")
	})
	cfg := clampCfg(config.RaiseOuter, "tailscale0")
	cfg.AssumeWSL, cfg.OuterScope = true, config.ScopeAll
	r, err := h.Plan(cfg)
	if err != nil || !strings.Contains(r.Plan.String(), "MSS clamping unavailable: iptables is not installed") {
		t.Errorf("dry run does not say clamping is unavailable:\n%s", r.Plan)
	}
	r, err = h.Fix(cfg)
	if !errors.Is(err, ErrMSSUnavailable) {
		t.Errorf("err = %v, want ErrMSSUnavailable", err)
	}
	if links.MTU("eth0") != 1360 || len(r.Changes) != 1 {
		t.Errorf("the MTU part was not applied: eth0 %d, changes %v", links.MTU("eth0"), r.Changes)
	}
}
