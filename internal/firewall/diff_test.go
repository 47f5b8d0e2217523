package firewall_test

import (
	"slices"
	"strings"
	"testing"

	fw "github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/testenv/firewalltest"
)

const (
	ruleIn  = "-i tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1161:65535 -j TCPMSS --set-mss 1160"
	ruleOut = "-o tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1161:65535 -j TCPMSS --set-mss 1160"
	jumpIn  = "-A PREROUTING -p tcp -j WSLMTU-IN"
	jumpOut = "-A POSTROUTING -p tcp -j WSLMTU-OUT"
	others  = "-A PREROUTING -i eth0 -j MARK --set-xmark 0x7/0xffffffff"
)

// mangle is a mangle table in save form: the built-in chains, the extra
// chains declared, then the rules.
func mangle(chains []string, rules ...string) string {
	var b strings.Builder
	b.WriteString("*mangle\n")
	for _, c := range firewalltest.Builtin {
		b.WriteString(":" + c + " ACCEPT [0:0]\n")
	}
	for _, c := range chains {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, r := range rules {
		b.WriteString(r + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

var ours = []string{fw.ChainIn, fw.ChainOut}

var inSync = mangle(ours, jumpIn, others, jumpOut, "-A WSLMTU-IN "+ruleIn, "-A WSLMTU-OUT "+ruleOut)

func TestDiff(t *testing.T) {
	want := &fw.Rules{In: []string{ruleIn}, Out: []string{ruleOut}}
	create := []string{
		":WSLMTU-IN - [0:0]", "-A WSLMTU-IN " + ruleIn,
		":WSLMTU-OUT - [0:0]", "-A WSLMTU-OUT " + ruleOut,
		"-I PREROUTING 1 -p tcp -j WSLMTU-IN", "-I POSTROUTING 1 -p tcp -j WSLMTU-OUT",
	}
	remove := []string{"-D PREROUTING -p tcp -j WSLMTU-IN", "-D POSTROUTING -p tcp -j WSLMTU-OUT",
		"-F WSLMTU-IN", "-X WSLMTU-IN", "-F WSLMTU-OUT", "-X WSLMTU-OUT"}
	tests := []struct {
		name  string
		want  *fw.Rules
		have  string // the family's save; "" = no tables at all
		lines []string
		found []string
	}{
		{"no table: create everything", want, "", create,
			[]string{"iptables chain WSLMTU-IN missing", "iptables chain WSLMTU-OUT missing",
				"iptables PREROUTING does not jump to WSLMTU-IN", "iptables POSTROUTING does not jump to WSLMTU-OUT"}},
		{"someone else's table: create ours, theirs untouched", want, mangle([]string{"ts-mangle"}, others, "-A ts-mangle -j RETURN"), create, nil},
		{"in sync between other rules: nothing", want, inSync, nil, nil},
		{"our jump no longer first: left where it is", want,
			mangle(ours, others, jumpIn, jumpOut, "-A WSLMTU-IN "+ruleIn, "-A WSLMTU-OUT "+ruleOut), nil, nil},
		{"a deleted rule: the chain is rewritten in one declaration", want,
			mangle(ours, jumpIn, jumpOut, "-A WSLMTU-OUT "+ruleOut),
			[]string{":WSLMTU-IN - [0:0]", "-A WSLMTU-IN " + ruleIn},
			[]string{"iptables chain WSLMTU-IN has 0 rules, 1 wanted"}},
		{"an edited rule", want,
			mangle(ours, jumpIn, jumpOut, "-A WSLMTU-IN "+strings.ReplaceAll(ruleIn, "1160", "1400"), "-A WSLMTU-OUT "+ruleOut),
			[]string{":WSLMTU-IN - [0:0]", "-A WSLMTU-IN " + ruleIn},
			[]string{"iptables chain WSLMTU-IN has other rules than wanted"}},
		{"a rule added to our chain by hand", want,
			mangle(ours, jumpIn, jumpOut, "-A WSLMTU-IN "+ruleIn, "-A WSLMTU-OUT "+ruleOut, "-A WSLMTU-OUT -j ACCEPT"),
			[]string{":WSLMTU-OUT - [0:0]", "-A WSLMTU-OUT " + ruleOut},
			[]string{"iptables chain WSLMTU-OUT has 2 rules, 1 wanted"}},
		{"a duplicate jump: all go, one comes back first", want,
			mangle(ours, others, jumpIn, jumpIn, jumpOut, "-A WSLMTU-IN "+ruleIn, "-A WSLMTU-OUT "+ruleOut),
			[]string{"-D PREROUTING -p tcp -j WSLMTU-IN", "-D PREROUTING -p tcp -j WSLMTU-IN", "-I PREROUTING 1 -p tcp -j WSLMTU-IN"},
			[]string{"iptables PREROUTING jumps to WSLMTU-IN 2 times"}},
		{"a deleted jump", want,
			mangle(ours, jumpIn, "-A WSLMTU-IN "+ruleIn, "-A WSLMTU-OUT "+ruleOut),
			[]string{"-I POSTROUTING 1 -p tcp -j WSLMTU-OUT"},
			[]string{"iptables POSTROUTING does not jump to WSLMTU-OUT"}},
		{"someone's own jump to our chain is not ours", want,
			mangle(ours, jumpIn, jumpOut, "-A OUTPUT -j WSLMTU-OUT", "-A WSLMTU-IN "+ruleIn, "-A WSLMTU-OUT "+ruleOut), nil, nil},
		{"a chain of someone else with a name like ours", want,
			mangle(append([]string{"WSLMTU-INX"}, ours...), jumpIn, jumpOut, "-A WSLMTU-IN "+ruleIn, "-A WSLMTU-OUT "+ruleOut, "-A WSLMTU-INX -j RETURN"), nil, nil},
		{"no tunnel rules wanted: empty chains, still jumped to", &fw.Rules{}, "",
			[]string{":WSLMTU-IN - [0:0]", ":WSLMTU-OUT - [0:0]", "-I PREROUTING 1 -p tcp -j WSLMTU-IN", "-I POSTROUTING 1 -p tcp -j WSLMTU-OUT"}, nil},
		{"clamping off: ours go, theirs stay", nil, inSync, remove,
			[]string{"iptables PREROUTING jumps to WSLMTU-IN", "iptables POSTROUTING jumps to WSLMTU-OUT",
				"iptables chain WSLMTU-IN exists", "iptables chain WSLMTU-OUT exists"}},
		{"clamping off, leftovers of a crash: a chain without a jump", nil, mangle([]string{fw.ChainOut}, others),
			[]string{"-F WSLMTU-OUT", "-X WSLMTU-OUT"}, nil},
		{"clamping off, a duplicate jump left", nil, mangle(ours, jumpIn, jumpIn),
			[]string{"-D PREROUTING -p tcp -j WSLMTU-IN", "-D PREROUTING -p tcp -j WSLMTU-IN", "-F WSLMTU-IN", "-X WSLMTU-IN", "-F WSLMTU-OUT", "-X WSLMTU-OUT"}, nil},
		{"clamping off, nothing of ours", nil, mangle([]string{"ts-mangle"}, others), nil, nil},
		{"clamping off, no table", nil, "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := fw.Parse(tt.have)
			if err != nil {
				t.Fatal(err)
			}
			p := fw.Diff(fw.IPv4, tt.want, set.Table(fw.Mangle))
			var lines []string
			for _, s := range p.Steps {
				lines = append(lines, s.Lines...)
			}
			if !slices.Equal(lines, tt.lines) {
				t.Errorf("lines\n  %s\nwant\n  %s", strings.Join(lines, "\n  "), strings.Join(tt.lines, "\n  "))
			}
			if tt.found != nil && !slices.Equal(p.Found(), tt.found) {
				t.Errorf("found %q, want %q", p.Found(), tt.found)
			}
			if p.Empty() != (len(tt.lines) == 0) || len(p.Done()) != len(p.Steps) {
				t.Errorf("Empty() = %v, Done() = %q", p.Empty(), p.Done())
			}
			if !p.Empty() && !strings.HasPrefix(p.Script(), "*mangle\n") || !strings.HasSuffix(p.Script(), "COMMIT\n") {
				t.Errorf("script %q", p.Script())
			}

			// Applied the way iptables-restore --noflush does, the patch
			// leaves nothing to do and everyone else's rules as they were.
			fake := firewalltest.New(fw.NFT)
			fake.Set(fw.NFT, fw.IPv4, tt.have)
			if !p.Empty() {
				if _, err := fake.Run("iptables-nft-restore", []string{"--noflush"}, p.Script()); err != nil {
					t.Fatal(err)
				}
			}
			after, err := fw.Parse(fake.Save(fw.NFT, fw.IPv4))
			if err != nil {
				t.Fatal(err)
			}
			if again := fw.Diff(fw.IPv4, tt.want, after.Table(fw.Mangle)); !again.Empty() {
				t.Errorf("after the patch, still to do: %q", again.Found())
			}
			if got, want := withoutOurs(after), withoutOurs(set); got != want {
				t.Errorf("other rules changed:\n%s\nwant\n%s", got, want)
			}
			if tt.want == nil && after.Ours() {
				t.Errorf("ours left after removal:\n%s", after)
			}
		})
	}
}

// withoutOurs is the mangle table's rules of everyone else, as text.
func withoutOurs(set *fw.Ruleset) string {
	var b strings.Builder
	if t := set.Table(fw.Mangle); t != nil {
		for _, c := range t.Chains {
			if c.Name == fw.ChainIn || c.Name == fw.ChainOut {
				continue
			}
			for _, r := range c.Rules {
				if r == "-p tcp -j "+fw.ChainIn && c.Name == "PREROUTING" || r == "-p tcp -j "+fw.ChainOut && c.Name == "POSTROUTING" {
					continue
				}
				b.WriteString(c.Name + " " + r + "\n")
			}
		}
	}
	return b.String()
}

func TestDiffIPv6WordsAndJumpDescriptions(t *testing.T) {
	p := fw.Diff(fw.IPv6, &fw.Rules{In: []string{ruleIn}}, nil)
	done := p.Done()
	want := []string{
		"ip6tables mangle: created chain WSLMTU-IN with 1 rules",
		"ip6tables mangle: created chain WSLMTU-OUT with 0 rules",
		"added ip6tables mangle PREROUTING: -p tcp -j WSLMTU-IN",
		"added ip6tables mangle POSTROUTING: -p tcp -j WSLMTU-OUT",
	}
	if !slices.Equal(done, want) {
		t.Errorf("Done() = %q, want %q", done, want)
	}
}
