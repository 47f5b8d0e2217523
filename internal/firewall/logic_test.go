package firewall

import (
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// scripted is a Runner whose answers a test gives: which programs resolve to
// which files, what each run prints, the namespace's stamp and net files. It
// fakes only the questions the pure decisions here ask.
type scripted struct {
	mu       sync.Mutex
	paths    map[string]string // program → resolved path; absent: not installed
	runs     map[string]func(args []string, stdin string) (string, error)
	calls    []string
	stamp    Stamp
	stampErr error
	netFiles map[string]string
	netErr   error
}

func (s *scripted) Resolve(name string) (string, error) {
	if p, ok := s.paths[name]; ok {
		return p, nil
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

func (s *scripted) Run(name string, args []string, stdin string) (string, error) {
	s.mu.Lock()
	s.calls = append(s.calls, strings.TrimSpace(name+" "+strings.Join(args, " ")))
	s.mu.Unlock()
	if run, ok := s.runs[name]; ok {
		return run(args, stdin)
	}
	return "", fmt.Errorf("%s: not scripted", name)
}

func (s *scripted) NetFile(name string) (string, error) { return s.netFiles[name], s.netErr }
func (s *scripted) Stamp() (Stamp, error)               { return s.stamp, s.stampErr }
func (s *scripted) Close() error                        { return nil }

func prints(out string) func([]string, string) (string, error) {
	return func([]string, string) (string, error) { return out, nil }
}

func fails(msg string) func([]string, string) (string, error) {
	return func([]string, string) (string, error) { return "", errors.New(msg) }
}

// A program's backend comes from the multi-call binary it links to, without
// a process; only a wrapper is asked with --version.
func TestModeOf(t *testing.T) {
	for _, tt := range []struct {
		resolved string
		version  func([]string, string) (string, error)
		want     string
		calls    []string
	}{
		{"/usr/sbin/xtables-nft-multi", nil, "nft", nil},
		{"/usr/sbin/xtables-legacy-multi", nil, "legacy", nil},
		{"/sbin/xtables-multi", nil, "legacy", nil},
		{"/usr/local/bin/iptables", prints("iptables v1.8.9 (nf_tables)\n"), "nft", []string{"iptables --version"}},
		{"/usr/local/bin/iptables", prints("iptables v1.8.9 (legacy)\n"), "legacy", []string{"iptables --version"}},
		{"/usr/local/bin/iptables", prints("iptables v1.6.1\n"), "legacy", []string{"iptables --version"}},
		{"/usr/local/bin/iptables", fails("exit status 2"), "error: iptables --version: exit status 2", []string{"iptables --version"}},
	} {
		r := &scripted{runs: map[string]func([]string, string) (string, error){}}
		if tt.version != nil {
			r.runs["iptables"] = tt.version
		}
		b, err := modeOf(r, "iptables", tt.resolved)
		got := string(b)
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tt.want || !slices.Equal(r.calls, tt.calls) {
			t.Errorf("modeOf(%s) = %q after %q, want %q after %q", tt.resolved, got, r.calls, tt.want, tt.calls)
		}
	}
}

// The suffixed programs first, then the plain ones when they are that
// backend; what was tried is named when none fits.
func TestToolsFor(t *testing.T) {
	nft, legacy := "/usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-legacy-multi"
	for _, tt := range []struct {
		name  string
		paths map[string]string
		b     Backend
		f     Family
		want  string
	}{
		{"suffixed", map[string]string{"iptables-nft-save": nft, "iptables-nft-restore": nft, "iptables-save": legacy, "iptables-restore": legacy},
			NFT, IPv4, "iptables-nft-save iptables-nft-restore"},
		{"plain names of the backend", map[string]string{"ip6tables-save": legacy, "ip6tables-restore": legacy},
			Legacy, IPv6, "ip6tables-save ip6tables-restore"},
		{"plain names of the other backend", map[string]string{"iptables-save": nft, "iptables-restore": nft},
			Legacy, IPv4, "error: no iptables-save for the legacy backend (iptables-legacy-save not found, iptables-save is nft)"},
		{"a wrapper that cannot say", map[string]string{"iptables-save": "/opt/iptables-save"},
			NFT, IPv4, "error: no iptables-save for the nft backend (iptables-nft-save not found, iptables-save --version: iptables-save: not scripted)"},
		{"no restore", map[string]string{"ip6tables-nft-save": nft},
			NFT, IPv6, "error: no ip6tables-restore for the nft backend (ip6tables-nft-restore not found, ip6tables-restore not found)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := toolsFor(&scripted{paths: tt.paths}, tt.b, tt.f)
			s := got.save + " " + got.restore
			if err != nil {
				s = "error: " + err.Error()
			}
			if s != tt.want {
				t.Errorf("got  %q\nwant %q", s, tt.want)
			}
		})
	}
}

// Only a missing extension (no TCPMSS target, no mangle table) means
// clamping is unavailable; any other failure is an error worth retrying.
func TestClassify(t *testing.T) {
	for _, msg := range []string{
		"iptables-restore v1.8.9 (nf_tables): Couldn't load target `TCPMSS':No such file or directory",
		"Couldn't load match `tcpmss'",
		"iptables-restore: line 3 failed: No chain/target/match by that name.",
		"can't initialize iptables table `mangle': Table does not exist",
		"iptables-restore: RULE_APPEND failed (No such file or directory): rule in chain WSLMTU-IN",
		"iptables-restore: RULE_INSERT failed (No such file or directory): rule in chain PREROUTING",
	} {
		err := classify(IPv6, errors.New(msg+"\n"))
		if !errors.Is(err, ErrUnavailable) || Reason(err) != "ip6tables: "+msg {
			t.Errorf("%q: %v (reason %q), want unavailable", msg, err, Reason(err))
		}
	}
	cause := errors.New("Another app is currently holding the xtables lock")
	err := classify(IPv4, cause)
	if errors.Is(err, ErrUnavailable) || !errors.Is(err, cause) || err.Error() != "iptables: "+cause.Error() || Reason(err) != err.Error() {
		t.Errorf("a lock: %v, want a plain error wrapping the cause", err)
	}
	if got := Unavailable("no iptables").Error(); got != "MSS clamping unavailable: no iptables; the MTU part still works" {
		t.Errorf("Unavailable text %q", got)
	}
}

func TestRestoreRetriesWithoutWaitOnlyForAnOldIptables(t *testing.T) {
	for _, tt := range []struct {
		name    string
		run     func(args []string, stdin string) (string, error)
		calls   int
		wantErr string
	}{
		{"ok", prints(""), 1, ""},
		{"unrecognized option", func(args []string, _ string) (string, error) {
			if slices.Contains(args, xtablesWait) {
				return "", errors.New("iptables-restore: unrecognized option '--wait=10'")
			}
			return "", nil
		}, 2, ""},
		{"invalid option", func(args []string, _ string) (string, error) {
			if slices.Contains(args, xtablesWait) {
				return "", errors.New("iptables-restore: invalid option -- 'w'")
			}
			return "", nil
		}, 2, ""},
		{"old and failing", fails("iptables-restore: invalid option -- 'w'"), 2, "iptables: iptables-restore: invalid option -- 'w'"},
		{"another failure is not retried", fails("line 2 failed"), 1, "iptables: line 2 failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &scripted{runs: map[string]func([]string, string) (string, error){"iptables-restore": tt.run}}
			err := restore(r, IPv4, "iptables-restore", "*mangle\nCOMMIT\n")
			if fmt.Sprint(err) != tt.wantErr && !(err == nil && tt.wantErr == "") {
				t.Errorf("err %v, want %q", err, tt.wantErr)
			}
			want := []string{"iptables-restore --noflush --wait=10", "iptables-restore --noflush"}[:tt.calls]
			if !slices.Equal(r.calls, want) {
				t.Errorf("calls %q, want %q", r.calls, want)
			}
		})
	}
	if err := restore(&scripted{}, IPv6, "", ""); err == nil || err.Error() != "no ip6tables-restore" {
		t.Errorf("no tool: %v", err)
	}
}

func TestStampEmpty(t *testing.T) {
	var none *Stamp
	for _, tt := range []struct {
		s          *Stamp
		ipv4, ipv6 bool
	}{
		{none, false, false},
		{&Stamp{}, true, true},
		{&Stamp{IPv4Tables: 1}, false, true},
		{&Stamp{IPv6Tables: 2}, true, false},
	} {
		if a, b := tt.s.empty(IPv4), tt.s.empty(IPv6); a != tt.ipv4 || b != tt.ipv6 {
			t.Errorf("%+v: empty %v %v, want %v %v", tt.s, a, b, tt.ipv4, tt.ipv6)
		}
	}
}

// A state is recalled only for the same namespace and generation, as a
// copy; a namespace without a cookie is never remembered; past
// maxRemembered namespaces the memory starts over.
func TestRememberAndRecall(t *testing.T) {
	const base = 1 << 62 // cookies no fake uses
	remembered.Lock()
	remembered.states = nil // other tests' reads are remembered too
	remembered.Unlock()
	st := &State{Backend: NFT, Why: "read"}
	remember(Stamp{Cookie: 0, Gen: 1}, st)
	if got := recall(Stamp{Cookie: 0, Gen: 1}); got != nil {
		t.Errorf("recalled a state without a cookie: %+v", got)
	}
	remember(Stamp{Cookie: base, Gen: 7}, st)
	got := recall(Stamp{Cookie: base, Gen: 7})
	if got == nil || got == st || got.Why != "read" {
		t.Fatalf("recall = %+v, want a copy of the state", got)
	}
	got.Why = "changed by a caller"
	if again := recall(Stamp{Cookie: base, Gen: 7}); again.Why != "read" {
		t.Errorf("a caller's change reached the memory: %q", again.Why)
	}
	if got := recall(Stamp{Cookie: base, Gen: 8}); got != nil {
		t.Error("recalled a state of another generation")
	}
	if got := recall(Stamp{Cookie: base + 1, Gen: 7}); got != nil {
		t.Error("recalled another namespace's state")
	}
	for i := range maxRemembered - 1 {
		remember(Stamp{Cookie: base + 100 + uint64(i), Gen: 1}, st)
	}
	remembered.Lock()
	n := len(remembered.states)
	remembered.Unlock()
	if n > maxRemembered {
		t.Fatalf("%d namespaces remembered, at most %d", n, maxRemembered)
	}
	remember(Stamp{Cookie: base + 99, Gen: 1}, st)
	if n != maxRemembered || recall(Stamp{Cookie: base, Gen: 7}) != nil {
		t.Errorf("%d namespaces remembered, then one more kept the oldest: the memory grew past maxRemembered", n)
	}
	if recall(Stamp{Cookie: base + 99, Gen: 1}) == nil {
		t.Error("the newest state was not remembered")
	}
}

func TestMayHoldOurs(t *testing.T) {
	legacy := map[string]string{"iptables-legacy-save": "x", "iptables-legacy-restore": "x", "ip6tables-legacy-save": "x", "ip6tables-legacy-restore": "x"}
	for _, tt := range []struct {
		name string
		r    *scripted
		want bool
	}{
		{"nf_tables cannot say", &scripted{stampErr: errors.New("no nf_tables")}, true},
		{"our IPv4 chain in nf_tables", &scripted{stamp: Stamp{IPv4Ours: true}}, true},
		{"our IPv6 chain in nf_tables", &scripted{stamp: Stamp{IPv6Ours: true}}, true},
		{"no legacy tools", &scripted{netFiles: map[string]string{"ip_tables_names": "mangle\n"}}, false},
		{"legacy without mangle", &scripted{paths: legacy, netFiles: map[string]string{"ip_tables_names": "filter\nnat\n", "ip6_tables_names": "filter\n"}}, false},
		{"a legacy IPv6 mangle table", &scripted{paths: legacy, netFiles: map[string]string{"ip_tables_names": "filter\n", "ip6_tables_names": "raw\nmangle\n"}}, true},
		{"a name only like mangle", &scripted{paths: legacy, netFiles: map[string]string{"ip_tables_names": "mangle2\n"}}, false},
		{"the table list cannot be read", &scripted{paths: legacy, netErr: errors.New("denied")}, true},
	} {
		if got := MayHoldOurs(tt.r); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestStateDescribeAndFamilies(t *testing.T) {
	st := &State{Backend: Legacy, Sets: map[Family]*Ruleset{IPv6: {}}, Missing: map[Family]string{IPv6: "b", IPv4: "a"}}
	if got := st.Describe(); got != "legacy; no iptables (a); no ip6tables (b)" {
		t.Errorf("Describe() = %q", got)
	}
	st.Why = "our chains are there"
	delete(st.Missing, IPv4)
	if got := st.Describe(); got != "legacy: our chains are there; no ip6tables (b)" {
		t.Errorf("Describe() = %q", got)
	}
	if got := st.Families(); !slices.Equal(got, []Family{IPv6}) {
		t.Errorf("Families() = %v", got)
	}
	st.Sets[IPv4] = &Ruleset{}
	if got := st.Families(); !slices.Equal(got, Families) {
		t.Errorf("Families() = %v, want both in order", got)
	}
	for f, want := range map[Family]string{IPv4: "iptables ip ip_tables_names", IPv6: "ip6tables ip6 ip6_tables_names"} {
		if got := f.Tool() + " " + f.nftFamily() + " " + f.namesFile(); got != want {
			t.Errorf("%s: %q, want %q", f, got, want)
		}
	}
}

// Diff's whole steps, words included, where counts change them.
func TestDiffWholeSteps(t *testing.T) {
	in := "-i wg0 -p tcp -j TCPMSS --set-mss 1160"
	parse := func(save string) *Table {
		set, err := Parse(save)
		if err != nil {
			t.Fatal(err)
		}
		return set.Table(Mangle)
	}
	for _, tt := range []struct {
		name string
		want *Rules
		have string
		out  []Step
	}{
		{"rules replaced, a jump three times", &Rules{In: []string{in}},
			"*mangle\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:WSLMTU-IN - [0:0]\n:WSLMTU-OUT - [0:0]\n" +
				"-A PREROUTING -p tcp -j WSLMTU-IN\n-A PREROUTING -p tcp -j WSLMTU-IN\n-A PREROUTING -p tcp -j WSLMTU-IN\n" +
				"-A POSTROUTING -p tcp -j WSLMTU-OUT\n-A WSLMTU-IN -j RETURN\n-A WSLMTU-OUT -j RETURN\nCOMMIT\n",
			[]Step{
				{Lines: []string{":WSLMTU-IN - [0:0]", "-A WSLMTU-IN " + in}, Found: "ip6tables chain WSLMTU-IN has other rules than wanted",
					Done: "ip6tables mangle WSLMTU-IN: 1 rules written (1 were there)"},
				{Lines: []string{":WSLMTU-OUT - [0:0]"}, Found: "ip6tables chain WSLMTU-OUT has 1 rules, 0 wanted",
					Done: "ip6tables mangle WSLMTU-OUT: 0 rules written (1 were there)"},
				{Lines: []string{"-D PREROUTING -p tcp -j WSLMTU-IN", "-D PREROUTING -p tcp -j WSLMTU-IN", "-D PREROUTING -p tcp -j WSLMTU-IN", "-I PREROUTING 1 -p tcp -j WSLMTU-IN"},
					Found: "ip6tables PREROUTING jumps to WSLMTU-IN 3 times", Done: "removed 2 duplicate jumps: ip6tables mangle PREROUTING: -p tcp -j WSLMTU-IN"},
			}},
		{"removal of a doubled jump and its chain", nil,
			"*mangle\n:POSTROUTING ACCEPT [0:0]\n:WSLMTU-OUT - [0:0]\n-A POSTROUTING -p tcp -j WSLMTU-OUT\n-A POSTROUTING -p tcp -j WSLMTU-OUT\nCOMMIT\n",
			[]Step{
				{Lines: []string{"-D POSTROUTING -p tcp -j WSLMTU-OUT", "-D POSTROUTING -p tcp -j WSLMTU-OUT"},
					Found: "ip6tables POSTROUTING jumps to WSLMTU-OUT 2 times", Done: "removed ip6tables mangle POSTROUTING: -p tcp -j WSLMTU-OUT (2 times)"},
				{Lines: []string{"-F WSLMTU-OUT", "-X WSLMTU-OUT"}, Found: "ip6tables chain WSLMTU-OUT exists", Done: "ip6tables mangle: deleted chain WSLMTU-OUT"},
			}},
		{"removal of a single jump", nil,
			"*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j WSLMTU-IN\nCOMMIT\n",
			[]Step{{Lines: []string{"-D PREROUTING -p tcp -j WSLMTU-IN"},
				Found: "ip6tables PREROUTING jumps to WSLMTU-IN", Done: "removed ip6tables mangle PREROUTING: -p tcp -j WSLMTU-IN"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := Diff(IPv6, tt.want, parse(tt.have))
			if p.Family != IPv6 || !reflect.DeepEqual(p.Steps, tt.out) {
				t.Errorf("steps:\n%+v\nwant\n%+v", p.Steps, tt.out)
			}
			var lines []string
			for _, s := range tt.out {
				lines = append(lines, s.Lines...)
			}
			if want := "*mangle\n" + strings.Join(lines, "\n") + "\nCOMMIT\n"; p.Script() != want {
				t.Errorf("script %q, want %q", p.Script(), want)
			}
		})
	}
	if p := Diff(IPv4, nil, nil); !p.Empty() || p.Script() != "*mangle\nCOMMIT\n" || p.Found() != nil || p.Done() != nil {
		t.Errorf("nothing to remove: %+v", p)
	}
}

// Every line Parse refuses is named with its number and why.
func TestParseErrorsNameTheLine(t *testing.T) {
	for text, want := range map[string]string{
		"# c\n-A PREROUTING -j ACCEPT\n":                      `iptables-save line 2 "-A PREROUTING -j ACCEPT": not a rule of a table`,
		"*mangle\n:X - [0:0]\n-A PREROUTING -j ACCEPT\n":      `iptables-save line 3 "-A PREROUTING -j ACCEPT": a rule in a chain not declared`,
		"*mangle\n-I PREROUTING 1\n":                          `iptables-save line 2 "-I PREROUTING 1": not a rule of a table`,
		"*mangle\n:PREROUTING ACCEPT [0:0]\n":                 "iptables-save: table mangle has no COMMIT (output cut short?)",
		"*mangle\n*nat\n":                                     `iptables-save line 2 "*nat": a table starts before COMMIT`,
		"*\nCOMMIT\n":                                         `iptables-save line 1 "*": no table name, or a table given twice`,
		"*nat\nCOMMIT\n*nat\nCOMMIT\n":                        `iptables-save line 3 "*nat": no table name, or a table given twice`,
		"  COMMIT\n":                                          `iptables-save line 1 "COMMIT": COMMIT outside a table`,
		":PREROUTING ACCEPT [0:0]\n":                          `iptables-save line 1 ":PREROUTING ACCEPT [0:0]": a chain outside a table, without a policy, or given twice`,
		"*mangle\n:PREROUTING\n":                              `iptables-save line 2 ":PREROUTING": a chain outside a table, without a policy, or given twice`,
		"*mangle\n:X - [0:0]\n:X - [0:0]\n":                   `iptables-save line 3 ":X - [0:0]": a chain outside a table, without a policy, or given twice`,
		"*mangle\n:X - [0:0]\n[1:2] -A Y -j RETURN\nCOMMIT\n": `iptables-save line 3 "-A Y -j RETURN": a rule in a chain not declared`,
	} {
		set, err := Parse(text)
		if err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v, %v\nwant %s", text, set, err, want)
		}
	}
}

// Parse and String are each other's inverse on what they keep (counters and
// comments go), and Clone shares nothing.
func TestRulesetTextAndClone(t *testing.T) {
	text := "# Generated by iptables-nft-save v1.8.9\n*raw\n:PREROUTING ACCEPT\nCOMMIT\n" + // counters are optional
		"*mangle\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING DROP [0:0]\n:WSLMTU-OUT - [0:0]\n" +
		"[9:540] -A POSTROUTING -p tcp -j WSLMTU-OUT\n-A WSLMTU-OUT  -o wg0 -j TCPMSS --clamp-mss-to-pmtu \n-A PREROUTING\nCOMMIT\n" +
		"# Table `nat' is incompatible, use 'nft' tool.\n# Table `filter' is something else\n"
	set, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	want := &Ruleset{
		Tables: []*Table{
			{Name: "raw", Chains: []*Chain{{Name: "PREROUTING", Policy: "ACCEPT"}}},
			{Name: "mangle", Chains: []*Chain{
				{Name: "PREROUTING", Policy: "ACCEPT", Rules: []string{""}},
				{Name: "POSTROUTING", Policy: "DROP", Rules: []string{"-p tcp -j WSLMTU-OUT"}},
				{Name: "WSLMTU-OUT", Policy: "-", Rules: []string{"-o wg0 -j TCPMSS --clamp-mss-to-pmtu"}},
			}},
		},
		Incompatible: []string{"nat"},
	}
	if !reflect.DeepEqual(set, want) {
		t.Errorf("Parse = %s", set)
	}
	str := "*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*mangle\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING DROP [0:0]\n:WSLMTU-OUT - [0:0]\n" +
		"-A PREROUTING \n-A POSTROUTING -p tcp -j WSLMTU-OUT\n-A WSLMTU-OUT -o wg0 -j TCPMSS --clamp-mss-to-pmtu\nCOMMIT\n" +
		"# Table `nat' is incompatible, use 'nft' tool.\n"
	if got := set.String(); got != str {
		t.Errorf("String() = %q\nwant %q", got, str)
	}
	if !set.HasRules() || !set.Ours() || set.Table(Mangle).Chain("WSLMTU-OUT").Builtin() || !set.Table(Mangle).Chain("POSTROUTING").Builtin() {
		t.Errorf("HasRules %v Ours %v", set.HasRules(), set.Ours())
	}
	c := set.Clone()
	if !reflect.DeepEqual(c, set) {
		t.Errorf("Clone() = %s", c)
	}
	c.Tables[1].Chains[1].Rules[0] = "changed"
	c.Tables[1].Chains = c.Tables[1].Chains[:1]
	c.Incompatible[0] = "changed"
	if !reflect.DeepEqual(set, want) {
		t.Errorf("changing the clone changed the original: %s", set)
	}

	var none *Ruleset
	if none.HasRules() || none.Ours() || none.Table(Mangle) != nil {
		t.Error("a nil ruleset has something")
	}
	jumpOnly, _ := Parse("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j WSLMTU-IN\nCOMMIT\n")
	emptyChains, _ := Parse("*mangle\n:PREROUTING ACCEPT [0:0]\n:OTHER - [0:0]\nCOMMIT\n")
	if !jumpOnly.Ours() || emptyChains.Ours() || emptyChains.HasRules() {
		t.Errorf("a jump alone is ours (%v); empty chains of others are neither ours nor rules (%v, %v)", jumpOnly.Ours(), emptyChains.Ours(), emptyChains.HasRules())
	}
}

func TestEmptyNFTTableItems(t *testing.T) {
	doc := func(items ...string) string {
		return `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "mangle"}}` + strings.Join(append([]string{""}, items...), ", ") + `]}`
	}
	base := `{"chain": {"name": "PREROUTING", "hook": "prerouting", "policy": "accept"}}`
	for _, tt := range []struct {
		name, listing string
		want          string
	}{
		{"no chains", doc(), "true"},
		{"base chains", doc(base, base), "true"},
		{"a user chain", doc(base, `{"chain": {"name": "X"}}`), "false"},
		{"a drop policy", doc(`{"chain": {"name": "INPUT", "hook": "input", "policy": "drop"}}`), "false"},
		{"a rule", doc(base, `{"rule": {"chain": "PREROUTING"}}`), "false"},
		{"a set", doc(`{"set": {"name": "s"}}`), "false"},
		{"a chain that is not an object", doc(`{"chain": 5}`), "error"},
		{"not json", "nope", "error"},
	} {
		empty, err := EmptyNFTTable(tt.listing)
		got := fmt.Sprint(empty)
		if err != nil {
			got = "error"
		}
		if got != tt.want {
			t.Errorf("%s: %s (%v), want %s", tt.name, got, err, tt.want)
		}
	}
}

func TestRemoveCreatedTableFailures(t *testing.T) {
	nft := map[string]string{"nft": "/usr/sbin/nft"}
	empty := `{"nftables": [{"table": {"family": "ip6", "name": "mangle"}}]}`
	for _, tt := range []struct {
		name string
		run  func(args []string, stdin string) (string, error)
		want string
	}{
		{"list fails", fails("Error: Operation not permitted"), "error: nft list table ip6 mangle: Error: Operation not permitted"},
		{"list is garbage", prints("{"), "error: nft list table ip6 mangle: unexpected end of JSON input"},
		{"delete fails", func(args []string, _ string) (string, error) {
			if args[0] == "delete" {
				return "", errors.New("Error: Device or resource busy")
			}
			return empty, nil
		}, "error: nft delete table ip6 mangle: Error: Device or resource busy"},
	} {
		r := &scripted{paths: nft, runs: map[string]func([]string, string) (string, error){"nft": tt.run}}
		got, err := RemoveCreatedTable(r, NFT, IPv6)
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
