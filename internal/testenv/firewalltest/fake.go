package firewalltest

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wslmtu/wslmtu/internal/firewall"
)

// Builtin are the mangle table's built-in chains, as the kernel makes them.
var Builtin = []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}

// Fake is the firewall of one namespace.
type Fake struct {
	mu sync.Mutex
	// Default is the backend plain `iptables` is.
	Default firewall.Backend
	sets    map[firewall.Backend]map[firewall.Family]*firewall.Ruleset
	// Missing programs, by name ("ip6tables-nft-save", "nft", "iptables").
	Missing map[string]bool
	// FailRestore, when set, decides whether a restore fails (before it
	// changes anything), e.g. like a kernel without the TCPMSS target.
	FailRestore func(tool string, args []string, script string) error
	calls       []string
	cookie      uint64
	gen         uint32
}

var _ firewall.Runner = (*Fake)(nil)

var cookies atomic.Uint64

// New is an empty firewall whose plain iptables is def.
func New(def firewall.Backend) *Fake {
	return &Fake{Default: def, Missing: map[string]bool{}, cookie: cookies.Add(1),
		sets: map[firewall.Backend]map[firewall.Family]*firewall.Ruleset{
			firewall.NFT: {}, firewall.Legacy: {}}}
}

// Open is a firewall.Opener for this fake, whatever the namespace.
func (f *Fake) Open(string) (firewall.Runner, error) { return f, nil }

// Set replaces a family's ruleset in a backend with iptables-save text.
func (f *Fake) Set(b firewall.Backend, fam firewall.Family, save string) {
	set, err := firewall.Parse(save)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets[b][fam] = set
	f.gen++
}

// Save is a family's ruleset in a backend, as iptables-save text without
// comments or counters.
func (f *Fake) Save(b firewall.Backend, fam firewall.Family) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if set := f.sets[b][fam]; set != nil {
		return set.String()
	}
	return ""
}

// Ours says whether a backend's family holds a chain or jump of ours.
func (f *Fake) Ours(b firewall.Backend, fam firewall.Family) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sets[b][fam].Ours()
}

// All is every backend's and family's save, for comparing whole states.
func (f *Fake) All() string {
	var b strings.Builder
	for _, be := range []firewall.Backend{firewall.NFT, firewall.Legacy} {
		for _, fam := range firewall.Families {
			fmt.Fprintf(&b, "# %s %s\n%s", be, fam, f.Save(be, fam))
		}
	}
	return b.String()
}

// Calls lists the programs run so far, with their arguments.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Count is how many runs so far started a program whose name contains s.
func (f *Fake) Count(s string) int {
	n := 0
	for _, c := range f.Calls() {
		name, _, _ := strings.Cut(c, " ")
		if strings.Contains(name, s) {
			n++
		}
	}
	return n
}

// ResetCalls forgets the programs run so far.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

func notFound(name string) error { return &exec.Error{Name: name, Err: exec.ErrNotFound} }

// tool splits "ip6tables-nft-restore" into its family, backend and kind
// ("save", "restore", or "" for iptables itself).
func (f *Fake) tool(name string) (firewall.Family, firewall.Backend, string, bool) {
	fam := firewall.IPv4
	rest, ok := strings.CutPrefix(name, "ip6tables")
	if ok {
		fam = firewall.IPv6
	} else if rest, ok = strings.CutPrefix(name, "iptables"); !ok {
		return "", "", "", false
	}
	b := f.Default
	for _, be := range []firewall.Backend{firewall.NFT, firewall.Legacy} {
		if r, ok := strings.CutPrefix(rest, "-"+string(be)); ok {
			b, rest = be, r
		}
	}
	switch rest {
	case "", "-save", "-restore":
		return fam, b, strings.TrimPrefix(rest, "-"), true
	}
	return "", "", "", false
}

// Resolve implements firewall.Runner.
func (f *Fake) Resolve(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Missing[name] {
		return "", notFound(name)
	}
	if name == "nft" {
		return "/usr/sbin/nft", nil
	}
	if _, b, _, ok := f.tool(name); ok {
		return "/usr/sbin/xtables-" + string(b) + "-multi", nil
	}
	return "", notFound(name)
}

// NetFile implements firewall.Runner: the legacy tables that exist.
func (f *Fake) NetFile(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fam := firewall.IPv4
	if name == "ip6_tables_names" {
		fam = firewall.IPv6
	}
	var names []string
	if set := f.sets[firewall.Legacy][fam]; set != nil {
		for _, t := range set.Tables {
			names = append(names, t.Name)
		}
	}
	if len(names) == 0 {
		return "", nil
	}
	return strings.Join(names, "\n") + "\n", nil
}

// Stamp implements firewall.Runner: every change of an nft ruleset (and
// every Set) counts as a new generation, as nf_tables does.
func (f *Fake) Stamp() (firewall.Stamp, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := firewall.Stamp{Cookie: f.cookie, Gen: f.gen}
	ours := func(set *firewall.Ruleset) bool {
		m := set.Table(firewall.Mangle)
		return m.Chain(firewall.ChainIn) != nil || m.Chain(firewall.ChainOut) != nil
	}
	if set := f.sets[firewall.NFT][firewall.IPv4]; set != nil {
		s.IPv4Tables, s.IPv4Ours = len(set.Tables)+len(set.Incompatible), ours(set)
	}
	if set := f.sets[firewall.NFT][firewall.IPv6]; set != nil {
		s.IPv6Tables, s.IPv6Ours = len(set.Tables)+len(set.Incompatible), ours(set)
	}
	return s, nil
}

// Close implements firewall.Runner.
func (f *Fake) Close() error { return nil }

// Run implements firewall.Runner.
func (f *Fake) Run(name string, args []string, stdin string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, strings.TrimSpace(name+" "+strings.Join(args, " ")))
	if f.Missing[name] {
		return "", notFound(name)
	}
	if name == "nft" {
		return f.nft(args)
	}
	fam, b, kind, ok := f.tool(name)
	if !ok {
		return "", notFound(name)
	}
	switch kind {
	case "":
		if slices.Equal(args, []string{"--version"}) {
			mode := "nf_tables"
			if b == firewall.Legacy {
				mode = "legacy"
			}
			return fmt.Sprintf("%s v1.8.9 (%s)\n", name, mode), nil
		}
	case "save":
		if len(args) == 0 {
			set := f.sets[b][fam]
			if set == nil || len(set.Tables) == 0 && len(set.Incompatible) == 0 {
				return "", nil
			}
			return fmt.Sprintf("# Generated by %s v1.8.9 on a fake\n%s# Completed on a fake\n", name, set), nil
		}
	case "restore":
		if !slices.Contains(args, "--noflush") {
			return "", fmt.Errorf("%s: the fake refuses a restore that flushes the tables", name)
		}
		if f.FailRestore != nil {
			if err := f.FailRestore(name, args, stdin); err != nil {
				return "", err
			}
		}
		set := f.sets[b][fam]
		if set == nil {
			set = &firewall.Ruleset{}
		}
		next := set.Clone()
		if err := restore(next, stdin); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		f.sets[b][fam] = next
		if b == firewall.NFT {
			f.gen++
		}
		return "", nil
	}
	return "", fmt.Errorf("%s %v: not something the fake does", name, args)
}

// restore applies a script as iptables-restore --noflush does.
func restore(set *firewall.Ruleset, script string) error {
	var cur *firewall.Table
	for n, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		bad := func(why string) error { return fmt.Errorf("line %d %q: %s", n+1, line, why) }
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			cur = set.Table(line[1:])
			if cur == nil {
				cur = &firewall.Table{Name: line[1:]}
				for _, c := range Builtin {
					cur.Chains = append(cur.Chains, &firewall.Chain{Name: c, Policy: "ACCEPT"})
				}
				set.Tables = append(set.Tables, cur)
			}
		case line == "COMMIT":
			cur = nil
		case cur == nil:
			return bad("outside a table")
		case strings.HasPrefix(line, ":"):
			fields := strings.Fields(line[1:])
			if c := cur.Chain(fields[0]); c != nil {
				if !c.Builtin() {
					c.Rules = nil // measured: --noflush still flushes a declared user chain
				}
				continue
			}
			cur.Chains = append(cur.Chains, &firewall.Chain{Name: fields[0], Policy: fields[1]})
		default:
			op, rest, _ := strings.Cut(line, " ")
			name, spec, _ := strings.Cut(rest, " ")
			c := cur.Chain(name)
			if c == nil {
				return bad("no chain/target/match by that name")
			}
			switch op {
			case "-A":
				c.Rules = append(c.Rules, spec)
			case "-I":
				pos, s, _ := strings.Cut(spec, " ")
				i, err := strconv.Atoi(pos)
				if err != nil || i < 1 || i > len(c.Rules)+1 {
					return bad("index of insertion too big")
				}
				c.Rules = slices.Insert(c.Rules, i-1, s)
			case "-D":
				i := slices.Index(c.Rules, spec)
				if i < 0 {
					return bad("bad rule (does a matching rule exist in that chain?)")
				}
				c.Rules = slices.Delete(c.Rules, i, i+1)
			case "-F":
				c.Rules = nil
			case "-X":
				if c.Builtin() || len(c.Rules) > 0 || referenced(cur, name) {
					return bad("cannot delete a built-in, non-empty or referenced chain")
				}
				cur.Chains = slices.DeleteFunc(cur.Chains, func(x *firewall.Chain) bool { return x == c })
			default:
				return bad("not something the fake restores")
			}
		}
	}
	if cur != nil {
		return fmt.Errorf("no COMMIT")
	}
	return nil
}

func referenced(t *firewall.Table, chain string) bool {
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			if strings.HasSuffix(r, "-j "+chain) || strings.Contains(r, "-j "+chain+" ") {
				return true
			}
		}
	}
	return false
}

// nft answers `nft -j list table F mangle` and `nft delete table F mangle`
// from the nft backend's rulesets: every built-in chain shows as a base
// chain with its policy, user chains as regular chains.
func (f *Fake) nft(args []string) (string, error) {
	if len(args) < 3 {
		return "", fmt.Errorf("nft %v: not something the fake does", args)
	}
	famName, table := args[len(args)-2], args[len(args)-1]
	fam := firewall.IPv4
	if famName == "ip6" {
		fam = firewall.IPv6
	}
	set := f.sets[firewall.NFT][fam]
	t := set.Table(table)
	if t == nil {
		return "", fmt.Errorf("nft %s: Error: No such file or directory", strings.Join(args, " "))
	}
	switch {
	case slices.Equal(args[:3], []string{"-j", "list", "table"}):
		items := []map[string]any{{"metainfo": map[string]any{"version": "1.0.6"}}, {"table": map[string]any{"family": famName, "name": table}}}
		for _, c := range t.Chains {
			chain := map[string]any{"family": famName, "table": table, "name": c.Name}
			if c.Builtin() {
				chain["hook"] = strings.ToLower(c.Name)
				chain["policy"] = strings.ToLower(c.Policy)
			}
			items = append(items, map[string]any{"chain": chain})
			for range c.Rules {
				items = append(items, map[string]any{"rule": map[string]any{"chain": c.Name}})
			}
		}
		out, err := json.Marshal(map[string]any{"nftables": items})
		return string(out), err
	case args[0] == "delete" && args[1] == "table":
		set.Tables = slices.DeleteFunc(set.Tables, func(x *firewall.Table) bool { return x == t })
		f.gen++
		return "", nil
	}
	return "", fmt.Errorf("nft %v: not something the fake does", args)
}
