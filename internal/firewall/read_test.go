package firewall_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	fw "github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/testenv/firewalltest"
)

const filterRule = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"

func TestReadChoosesTheBackend(t *testing.T) {
	legacyOurs := mangle(ours, jumpIn, jumpOut)
	tests := []struct {
		name    string
		def     fw.Backend
		nft     string // IPv4 save of each backend
		legacy  string
		want    fw.Backend
		why     string
		process []string // programs started, in any order
	}{
		// Only families with tables are saved: nf_tables and
		// /proc/net/ip_tables_names say which, without a process.
		{"a clean host: the default, nft, and no process at all", fw.NFT, "", "", fw.NFT,
			"no rules in either backend; the default iptables", nil},
		{"a clean host whose iptables is legacy", fw.Legacy, "", "", fw.Legacy,
			"no rules in either backend; the default iptables", nil},
		{"rules in nft only, legacy the default", fw.Legacy, filterRule, "", fw.NFT,
			"iptables-nft already holds rules", []string{"iptables-nft-save"}},
		{"rules in legacy only", fw.NFT, "", filterRule, fw.Legacy,
			"iptables-legacy already holds rules", []string{"iptables-legacy-save"}},
		{"legacy has an empty table, made by a look", fw.NFT, "", mangle(nil), fw.NFT,
			"no rules in either backend; the default iptables", []string{"iptables-legacy-save"}},
		{"rules in both: the default", fw.Legacy, filterRule, filterRule, fw.Legacy,
			"both backends hold rules; the default iptables", []string{"iptables-nft-save", "iptables-legacy-save"}},
		{"our chains win over other rules", fw.NFT, filterRule, legacyOurs, fw.Legacy,
			"our chains are there", []string{"iptables-nft-save", "iptables-legacy-save"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := firewalltest.New(tt.def)
			fake.Set(fw.NFT, fw.IPv4, tt.nft)
			fake.Set(fw.Legacy, fw.IPv4, tt.legacy)
			st, err := fw.Read(fake, fw.Auto)
			if err != nil {
				t.Fatal(err)
			}
			if st.Backend != tt.want || st.Why != tt.why {
				t.Errorf("chose %s (%s), want %s (%s)", st.Backend, st.Why, tt.want, tt.why)
			}
			if got := st.Families(); !slices.Equal(got, fw.Families) {
				t.Errorf("families %v", got)
			}
			calls := fake.Calls()
			slices.Sort(calls)
			slices.Sort(tt.process)
			if !slices.Equal(calls, tt.process) {
				t.Errorf("started %q, want %q", calls, tt.process)
			}
			if st.Sets[fw.IPv4].String() != fake.Save(tt.want, fw.IPv4) {
				t.Errorf("the state is not the chosen backend's save:\n%s", st.Sets[fw.IPv4])
			}
		})
	}
}

func TestReadAGivenBackendSavesOncePerFamily(t *testing.T) {
	fake := firewalltest.New(fw.NFT)
	fake.Set(fw.Legacy, fw.IPv6, inSync)
	st, err := fw.Read(fake, fw.Legacy)
	if err != nil {
		t.Fatal(err)
	}
	calls := fake.Calls()
	slices.Sort(calls)
	if !slices.Equal(calls, []string{"ip6tables-legacy-save", "iptables-legacy-save"}) {
		t.Errorf("started %q", calls)
	}
	// Through nft, a family without tables is not saved, and an unchanged
	// firewall is not read again.
	fake.Set(fw.NFT, fw.IPv4, inSync)
	fake.ResetCalls()
	for range 2 {
		if _, err := fw.Read(fake, fw.NFT); err != nil {
			t.Fatal(err)
		}
	}
	if calls := fake.Calls(); !slices.Equal(calls, []string{"iptables-nft-save"}) {
		t.Errorf("two reads through nft started %q, want one IPv4 save", calls)
	}
	if st.Mangle(fw.IPv4) != nil || st.Mangle(fw.IPv6) == nil || !st.Ours() {
		t.Errorf("mangle tables: ipv4 %v, ipv6 %v", st.Mangle(fw.IPv4), st.Mangle(fw.IPv6))
	}
}

func TestReadWithoutTools(t *testing.T) {
	fake := firewalltest.New(fw.NFT)
	for _, name := range []string{"ip6tables-nft-save", "ip6tables-legacy-save", "ip6tables-save"} {
		fake.Missing[name] = true
	}
	st, err := fw.Read(fake, fw.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Families(); !slices.Equal(got, []fw.Family{fw.IPv4}) {
		t.Errorf("families %v, want ipv4 only", got)
	}
	if d := st.Describe(); !strings.HasPrefix(d, "nft: no rules in either backend; the default iptables; no ip6tables (no ip6tables-save for the nft backend") {
		t.Errorf("Describe() = %q", d)
	}

	none := firewalltest.New(fw.NFT)
	for _, f := range []string{"iptables", "ip6tables"} {
		for _, b := range []string{"-nft", "-legacy", ""} {
			for _, k := range []string{"", "-save", "-restore"} {
				none.Missing[f+b+k] = true
			}
		}
	}
	_, err = fw.Read(none, fw.Auto)
	if !errors.Is(err, fw.ErrUnavailable) || !strings.Contains(err.Error(), "iptables is not installed (apt install iptables)") {
		t.Errorf("no iptables at all: %v", err)
	}
}

func TestReadLeavesATableItCannotChange(t *testing.T) {
	fake := firewalltest.New(fw.NFT)
	fake.Set(fw.NFT, fw.IPv6, "# Table `mangle' is incompatible, use 'nft' tool.\n")
	st, err := fw.Read(fake, fw.NFT)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Families(); !slices.Equal(got, []fw.Family{fw.IPv4}) || !strings.Contains(st.Missing[fw.IPv6], "written by nft directly") {
		t.Errorf("families %v, missing %q", got, st.Missing)
	}
}

func TestApplyOneRestorePerFamily(t *testing.T) {
	fake := firewalltest.New(fw.NFT)
	st, err := fw.Read(fake, fw.Auto)
	if err != nil {
		t.Fatal(err)
	}
	want := &fw.Rules{In: []string{ruleIn}, Out: []string{ruleOut}}
	patches := []fw.Patch{fw.Diff(fw.IPv4, want, st.Mangle(fw.IPv4)), fw.Diff(fw.IPv6, nil, st.Mangle(fw.IPv6))}
	fake.ResetCalls()
	done, err := fw.Apply(fake, st, patches)
	if err != nil {
		t.Fatal(err)
	}
	if calls := fake.Calls(); !slices.Equal(calls, []string{"iptables-nft-restore --noflush --wait=10"}) {
		t.Errorf("started %q, want one restore (the IPv6 patch is empty)", calls)
	}
	if len(done) != 4 {
		t.Errorf("done %q", done)
	}

	// A kernel without the TCPMSS target: unavailable, nothing changed.
	bare := firewalltest.New(fw.NFT)
	bare.FailRestore = func(tool string, args []string, script string) error {
		return errors.New("iptables-nft-restore v1.8.9 (nf_tables): Couldn't load target `TCPMSS':No such file or directory")
	}
	st, _ = fw.Read(bare, fw.Auto)
	_, err = fw.Apply(bare, st, []fw.Patch{fw.Diff(fw.IPv4, want, nil)})
	if !errors.Is(err, fw.ErrUnavailable) || !strings.Contains(err.Error(), "the MTU part still works") {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
	if bare.Save(fw.NFT, fw.IPv4) != "" {
		t.Errorf("a failed restore changed the firewall:\n%s", bare.Save(fw.NFT, fw.IPv4))
	}

	// iptables-restore before 1.6.2 has no --wait.
	old := firewalltest.New(fw.Legacy)
	old.FailRestore = func(tool string, args []string, script string) error {
		if slices.Contains(args, "--wait=10") {
			return errors.New("iptables-restore: unrecognized option '--wait=10'")
		}
		return nil
	}
	st, _ = fw.Read(old, fw.Auto)
	if _, err := fw.Apply(old, st, []fw.Patch{fw.Diff(fw.IPv4, want, nil)}); err != nil || !old.Ours(fw.Legacy, fw.IPv4) {
		t.Errorf("without --wait: %v\n%q", err, old.Calls())
	}
}

func TestRemoveCreatedTable(t *testing.T) {
	fake := firewalltest.New(fw.NFT)
	fake.Set(fw.NFT, fw.IPv4, mangle(nil))
	fake.Set(fw.NFT, fw.IPv6, mangle(nil, others))
	got, err := fw.RemoveCreatedTable(fake, fw.NFT, fw.IPv4)
	if err != nil || got != "nft: deleted the empty table ip mangle (it did not exist before wslmtu)" || fake.Save(fw.NFT, fw.IPv4) != "" {
		t.Errorf("an empty table: %q, %v; left %q", got, err, fake.Save(fw.NFT, fw.IPv4))
	}
	got, err = fw.RemoveCreatedTable(fake, fw.NFT, fw.IPv6)
	if err != nil || !strings.Contains(got, "ip6 mangle stays: it holds rules") || fake.Save(fw.NFT, fw.IPv6) == "" {
		t.Errorf("a table with someone's rule: %q, %v", got, err)
	}
	if got, err := fw.RemoveCreatedTable(fake, fw.NFT, fw.IPv4); got != "" || err != nil {
		t.Errorf("a table already gone: %q, %v", got, err)
	}
	fake.Missing["nft"] = true
	fake.Set(fw.NFT, fw.IPv4, mangle(nil))
	if got, _ := fw.RemoveCreatedTable(fake, fw.NFT, fw.IPv4); !strings.Contains(got, "nft is not installed") {
		t.Errorf("without nft: %q", got)
	}
	if got, _ := fw.RemoveCreatedTable(fake, fw.Legacy, fw.IPv4); !strings.Contains(got, "legacy tables cannot be deleted") {
		t.Errorf("legacy: %q", got)
	}
}

// Real `nft -j list table ip mangle` outputs (nft 1.0.6).
func TestEmptyNFTTable(t *testing.T) {
	for name, want := range map[string]bool{
		"nft-mangle-empty.json": true,  // base chains left by iptables-nft, nothing in them
		"nft-mangle-ours.json":  false, // rules and a user chain
		"nft-mangle-set.json":   false, // a set someone made
	} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := fw.EmptyNFTTable(string(data)); got != want || err != nil {
			t.Errorf("%s: %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := fw.EmptyNFTTable("not json"); err == nil {
		t.Error("no error for garbage")
	}
}
