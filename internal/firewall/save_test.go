package firewall

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The testdata are real outputs of iptables 1.8.9 in a namespace, both
// backends and families, with and without -c: other people's chains and
// rules (a quoted comment, MARK, a user chain, nat), ours, counters from
// real traffic, and a rule iptables-nft cannot translate.
func TestParseRealSaves(t *testing.T) {
	ours := map[string]string{
		"iptables":  "-i tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1161:65535 -j TCPMSS --set-mss 1160",
		"ip6tables": "-i tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1141:65535 -j TCPMSS --set-mss 1140",
	}
	for _, name := range []string{
		"iptables-nft.save", "iptables-nft-counters.save", "iptables-legacy.save", "iptables-legacy-counters.save",
		"ip6tables-nft.save", "ip6tables-nft-counters.save", "ip6tables-legacy.save", "ip6tables-legacy-counters.save",
	} {
		t.Run(name, func(t *testing.T) {
			text := readTestdata(t, name)
			set, err := Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			tool, _, _ := strings.Cut(name, "-")
			var tables []string
			for _, tb := range set.Tables {
				tables = append(tables, tb.Name)
			}
			wantTables := []string{"mangle", "filter"}
			if tool == "iptables" {
				wantTables = append(wantTables, "nat")
			}
			slices.Sort(tables)
			slices.Sort(wantTables)
			if !slices.Equal(tables, wantTables) {
				t.Errorf("tables %v, want %v", tables, wantTables)
			}
			m := set.Table(Mangle)
			if got := m.Chain(ChainIn).Rules; !slices.Equal(got, []string{ours[tool]}) {
				t.Errorf("WSLMTU-IN = %q", got)
			}
			if got := m.Chain("PREROUTING").Rules; !slices.Equal(got, []string{"-p tcp -j WSLMTU-IN", "-i eth0 -j MARK --set-xmark 0x7/0xffffffff"}) {
				t.Errorf("PREROUTING = %q", got)
			}
			if c := m.Chain("ts-mangle"); c == nil || c.Builtin() || len(c.Rules) != 1 {
				t.Errorf("someone else's chain: %+v", c)
			}
			f := set.Table("filter")
			if c := f.Chain("FORWARD"); c == nil || c.Policy != "DROP" || !c.Builtin() {
				t.Errorf("FORWARD: %+v", c)
			}
			if got := f.Chain("DOCKER-USER").Rules; !slices.Equal(got, []string{`-m comment --comment "allow the lab, \"quoted\" words" -j RETURN`}) {
				t.Errorf("a quoted comment is not kept verbatim: %q", got)
			}
			if !set.Ours() || !set.HasRules() {
				t.Error("ours and rules not seen")
			}
			// String is the save without comments and counters.
			if got, want := set.String(), normalize(text); !sameLines(got, want) {
				t.Errorf("String() =\n%s\nwant (as lines, any table order)\n%s", got, want)
			}
			again, err := Parse(set.String())
			if err != nil || again.String() != set.String() {
				t.Errorf("String() does not parse back: %v", err)
			}
		})
	}
}

func TestParseCountersFromTraffic(t *testing.T) {
	for _, name := range []string{"iptables-nft-traffic.save", "iptables-legacy-traffic.save"} {
		set, err := Parse(readTestdata(t, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := set.Table(Mangle).Chain("PREROUTING").Rules; !slices.Equal(got, []string{"-p tcp -j WSLMTU-IN", `-i lo -m comment --comment "count lo" -j MARK --set-xmark 0x7/0xffffffff`}) {
			t.Errorf("%s: PREROUTING = %q", name, got)
		}
		if c := set.Table(Mangle).Chain(ChainIn); c == nil || len(c.Rules) != 0 || c.Policy != "-" {
			t.Errorf("%s: an empty chain of ours: %+v", name, c)
		}
	}
}

func TestParseUntranslatableAndIncompatible(t *testing.T) {
	// A rule written by nft directly (a set lookup) shows as a bare "-A".
	set, err := Parse(readTestdata(t, "iptables-nft-untranslatable.save"))
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Table(Mangle).Chain("PREROUTING").Rules; !slices.Equal(got, []string{""}) || set.Ours() {
		t.Errorf("PREROUTING = %q", got)
	}
	set, err = Parse("*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n# Table `mangle' is incompatible, use 'nft' tool.\n")
	if err != nil || !slices.Equal(set.Incompatible, []string{"mangle"}) || set.Table(Mangle) != nil {
		t.Errorf("incompatible table: %+v, %v", set, err)
	}
}

func TestParseRefusesWhatItDoesNotUnderstand(t *testing.T) {
	for _, text := range []string{
		"-A PREROUTING -j ACCEPT\n",                                    // outside a table
		"*mangle\n-A PREROUTING -j ACCEPT\nCOMMIT\n",                   // chain not declared
		"*mangle\n:PREROUTING ACCEPT [0:0]\n",                          // cut short
		"*mangle\n*nat\nCOMMIT\n",                                      // nested
		"*mangle\n:PREROUTING\nCOMMIT\n",                               // no policy
		"*mangle\n:PREROUTING ACCEPT [0:0]\n-I PREROUTING 1\nCOMMIT\n", // not save output
		"COMMIT\n",
	} {
		if set, err := Parse(text); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", text, set)
		}
	}
	if set, err := Parse(""); err != nil || len(set.Tables) != 0 || set.Ours() || set.HasRules() {
		t.Errorf("an empty save (no tables) = %+v, %v", set, err)
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

var counter = regexp.MustCompile(`^\[\d+:\d+\] | \[\d+:\d+\]$`)

func normalize(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		l = counter.ReplaceAllString(l, "")
		if strings.HasPrefix(l, ":") {
			l += " [0:0]"
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n") + "\n"
}

func sameLines(a, b string) bool {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
