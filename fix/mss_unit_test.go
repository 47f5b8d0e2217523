package fix

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/testenv/firewalltest"
)

func TestMSSChangeStringTable(t *testing.T) {
	for _, tt := range []struct {
		c    MSSChange
		want string
	}{
		{MSSChange{Backend: "nft", Clamp: true}, "mss clamp: rules already in place (iptables nft)"},
		{MSSChange{Backend: "nft"}, "mss clamp off: none of our rules were left (iptables nft)"},
		{MSSChange{Backend: "nft", Clamp: true, Done: []string{"a"}}, "mss clamp: a"},
		{MSSChange{Backend: "nft", Clamp: true, Done: []string{"a", "b", "c"}}, "mss clamp: a\nmss clamp: b\nmss clamp: c"},
	} {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.c, got, tt.want)
		}
	}
}

// The rules land in their chains: arriving (-i) in WSLMTU-IN, leaving (-o)
// in WSLMTU-OUT, in the firewall itself, not only in the plan's words.
func TestSyncPutsEachRuleInItsChain(t *testing.T) {
	fake := firewalltest.New(firewall.NFT)
	h, _ := fakeHost(t, fake)
	p := NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff, "tailscale0"))
	if _, err := h.SyncFirewall(&p); err != nil {
		t.Fatal(err)
	}
	for _, f := range firewall.Families {
		set, err := firewall.Parse(fake.Save(firewall.NFT, f))
		if err != nil {
			t.Fatal(err)
		}
		m := set.Table(firewall.Mangle)
		for chain, flag := range map[string]string{firewall.ChainIn: "-i tailscale0 ", firewall.ChainOut: "-o tailscale0 "} {
			c := m.Chain(chain)
			if c == nil || len(c.Rules) != 1 || !strings.HasPrefix(c.Rules[0], flag) {
				t.Errorf("%s %s: %+v, want one rule starting %q", f, chain, c, flag)
			}
		}
	}
}

// A tunnel pattern that also matches the outer interface never becomes a
// prefix rule: that would clamp every connection through the outer
// interface. Only the tunnels present that it matches are clamped.
func TestClampNeverMatchesTheOuterInterface(t *testing.T) {
	st := mssTestState(1280, "tailscale0")
	outer := *st.Outer
	outer.Name = "wgx"
	st.Outer = &outer
	p := NewPlan(st, Record{}, clampCfg(config.StrategyOff))
	var names []string
	for _, r := range p.MSS.Rules {
		if r.Family == firewall.IPv4 && r.Chain == firewall.ChainIn {
			names = append(names, r.Spec[1])
		}
	}
	if !slices.Equal(names, []string{"tailscale0", "wt+"}) {
		t.Errorf("clamped interfaces %q, want tailscale0 and wt+ (wg* matches the outer interface wgx)", names)
	}
}

// Revert takes a version 1 record's chains out of the firewall and out of
// revert.json: nothing of ours is left recorded.
func TestRevertClearsAVersion1RecordsChains(t *testing.T) {
	fake := firewalltest.New(firewall.Legacy)
	h, _ := fakeHost(t, fake)
	if _, err := syncCopy(h, NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff, "tailscale0"))); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(h.Store.Dir, "firewall.json"))
	v1 := `{"version": 1, "original_mtu": {"eth0": 1280}, "mss": {"backend": "legacy", "families": ["ipv4", "ipv6"], ` +
		`"table": "mangle", "chains": ["WSLMTU-IN", "WSLMTU-OUT"], "jumps": ["PREROUTING -p tcp -j WSLMTU-IN", "POSTROUTING -p tcp -j WSLMTU-OUT"]}}`
	if err := os.WriteFile(h.Store.RecordPath(), []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Revert(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fake.All(), "WSLMTU") {
		t.Errorf("our chains are left:\n%s", fake.All())
	}
	if rec, _, err := h.Store.LoadRecord(); err != nil || rec.MSS != nil || !rec.Empty() {
		t.Errorf("record after revert: %+v, %v", rec, err)
	}
}

// Without iptables, clamping off is no error when nothing of ours is
// recorded; with our chains recorded, not being able to remove them is.
func TestSyncWithoutIPTablesTable(t *testing.T) {
	off := NewPlan(mssTestState(1280, "tailscale0"), Record{}, config.Default())
	h, _ := fakeHost(t, nil)
	if c, err := syncCopy(h, off); c != nil || err != nil {
		t.Errorf("nothing recorded: %v, %v", c, err)
	}
	if err := h.Store.saveFirewallRecord(&MSSRecord{Backend: firewall.NFT, Families: firewall.Families}); err != nil {
		t.Fatal(err)
	}
	if _, err := syncCopy(h, off); !errors.Is(err, firewall.ErrUnavailable) {
		t.Errorf("our chains recorded: err = %v, want one matching firewall.ErrUnavailable", err)
	}
}

// ourChainsGoneByHand is a host whose chains were synced into someone
// else's mangle tables (so none is recorded as created by us) and then
// deleted by hand, leaving the record.
func ourChainsGoneByHand(t *testing.T) Host {
	fake := firewalltest.New(firewall.NFT)
	for _, f := range firewall.Families {
		fake.Set(firewall.NFT, f, someoneElses)
	}
	h, _ := fakeHost(t, fake)
	on := NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff, "tailscale0"))
	if _, err := syncCopy(h, on); err != nil {
		t.Fatal(err)
	}
	// A sync with all in place does not write the record again.
	path := filepath.Join(h.Store.Dir, "firewall.json")
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := syncCopy(h, on); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
		t.Errorf("a sync with nothing to do rewrote firewall.json (%v)", err)
	}
	for _, f := range firewall.Families {
		fake.Set(firewall.NFT, f, someoneElses)
	}
	return h
}

// Chains deleted by hand: clamping off forgets them, and revert says they
// were already gone.
func TestOurChainsGoneByHand(t *testing.T) {
	h := ourChainsGoneByHand(t)
	off := NewPlan(mssTestState(1280, "tailscale0"), Record{}, config.Default())
	if _, err := syncCopy(h, off); err != nil {
		t.Fatal(err)
	}
	if rec, err := h.Store.loadFirewallRecord(); rec != nil || err != nil {
		t.Errorf("clamping off left the record: %+v, %v", rec, err)
	}

	h = ourChainsGoneByHand(t)
	out, err := h.revertFirewall()
	if err != nil || len(out) != 1 || out[0].String() != "mss clamp: chains WSLMTU-IN and WSLMTU-OUT were already gone (iptables nft)" {
		t.Errorf("revert: %q, %v", out, err)
	}
}

// Clamping off after wslmtu made the mangle tables says what became of
// them, one line per family, and nothing empty.
func TestClampOffSaysWhatBecameOfOurTables(t *testing.T) {
	fake := firewalltest.New(firewall.Legacy)
	h, _ := fakeHost(t, fake)
	if _, err := syncCopy(h, NewPlan(mssTestState(1280, "tailscale0"), Record{}, clampCfg(config.StrategyOff, "tailscale0"))); err != nil {
		t.Fatal(err)
	}
	c, err := syncCopy(h, NewPlan(mssTestState(1280, "tailscale0"), Record{}, config.Default()))
	if err != nil || c == nil {
		t.Fatalf("%v, %v", c, err)
	}
	var tables []string
	for _, d := range c.Done {
		if d == "" {
			t.Errorf("an empty line in %q", c.Done)
		}
		if strings.Contains(d, "legacy mangle table stays") {
			tables = append(tables, d)
		}
	}
	if len(tables) != 2 {
		t.Errorf("done %q, want a line for each family's table", c.Done)
	}
}
