package firewall_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	fw "github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/testenv/firewalltest"
)

// missingBackend removes every program of one backend, plain names too
// when the fake's plain iptables is that backend.
func missingBackend(fake *firewalltest.Fake, b fw.Backend) {
	for _, f := range []string{"iptables", "ip6tables"} {
		for _, k := range []string{"-save", "-restore"} {
			fake.Missing[f+"-"+string(b)+k] = true
			if fake.Default == b {
				fake.Missing[f+k] = true
			}
		}
	}
}

// A host with only one backend installed uses it; a backend asked for by
// name that is not installed is unavailable, naming both families' reasons.
func TestReadWithOneBackendInstalled(t *testing.T) {
	for _, b := range []fw.Backend{fw.NFT, fw.Legacy} {
		other := fw.Legacy
		if b == fw.Legacy {
			other = fw.NFT
		}
		fake := firewalltest.New(b)
		missingBackend(fake, other)
		fake.Set(b, fw.IPv4, filterRule)
		st, err := fw.Read(fake, fw.Auto)
		if err != nil || st.Backend != b || !slices.Equal(st.Families(), fw.Families) {
			t.Errorf("only %s installed: %+v, %v", b, st, err)
		}
		_, err = fw.Read(fake, other)
		want := "MSS clamping unavailable: no iptables-save for the " + string(other) + " backend (iptables-" + string(other) + "-save not found, iptables-save is " + string(b) + "); " +
			"no ip6tables-save for the " + string(other) + " backend (ip6tables-" + string(other) + "-save not found, ip6tables-save is " + string(b) + "); the MTU part still works"
		if !errors.Is(err, fw.ErrUnavailable) || err.Error() != want {
			t.Errorf("reading %s where only %s is installed:\n got %v\nwant %s", other, b, err, want)
		}
	}
}

// Each family's patch goes through its own restore: when one fails, the
// other's changes still count as done, and the error names the family.
func TestApplyReportsOnlyWhatWasDone(t *testing.T) {
	fake := firewalltest.New(fw.NFT)
	fake.FailRestore = func(tool string, args []string, script string) error {
		if strings.HasPrefix(tool, "ip6tables") {
			return errors.New("Another app is currently holding the xtables lock")
		}
		return nil
	}
	st, err := fw.Read(fake, fw.NFT)
	if err != nil {
		t.Fatal(err)
	}
	want := &fw.Rules{In: []string{ruleIn}, Out: []string{ruleOut}}
	done, err := fw.Apply(fake, st, []fw.Patch{fw.Diff(fw.IPv6, want, nil), fw.Diff(fw.IPv4, want, nil)})
	if err == nil || err.Error() != "ip6tables: Another app is currently holding the xtables lock" || errors.Is(err, fw.ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
	if wantDone := fw.Diff(fw.IPv4, want, nil).Done(); !slices.Equal(done, wantDone) {
		t.Errorf("done %q, want only IPv4's %q", done, wantDone)
	}
	if !fake.Ours(fw.NFT, fw.IPv4) || fake.Ours(fw.NFT, fw.IPv6) {
		t.Errorf("after a failed IPv6 restore:\n%s", fake.All())
	}
}

// iptables without any save or restore program: unavailable, each backend's
// and family's reason named, nft's first.
func TestReadWithIptablesButNoSave(t *testing.T) {
	fake := firewalltest.New(fw.NFT)
	missingBackend(fake, fw.NFT)
	missingBackend(fake, fw.Legacy)
	for _, f := range []string{"iptables", "ip6tables"} {
		fake.Missing[f+"-save"], fake.Missing[f+"-restore"] = true, true
	}
	_, err := fw.Read(fake, fw.Auto)
	want := "MSS clamping unavailable: " +
		"no iptables-save for the nft backend (iptables-nft-save not found, iptables-save not found); " +
		"no ip6tables-save for the nft backend (ip6tables-nft-save not found, ip6tables-save not found); " +
		"no iptables-save for the legacy backend (iptables-legacy-save not found, iptables-save not found); " +
		"no ip6tables-save for the legacy backend (ip6tables-legacy-save not found, ip6tables-save not found); the MTU part still works"
	if !errors.Is(err, fw.ErrUnavailable) || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}
