package firewall

import (
	"fmt"
	"strings"
)

// Ruleset is one family's iptables-save output: its tables in order.
type Ruleset struct {
	Tables []*Table
	// Incompatible names tables iptables-nft cannot show because something
	// other than iptables wrote them ("# Table `mangle' is incompatible,
	// use 'nft' tool."): restoring into them would fail, so we do not try.
	Incompatible []string
}

// Table is one "*name … COMMIT" block.
type Table struct {
	Name   string
	Chains []*Chain
}

// Chain is one ":NAME POLICY [packets:bytes]" line and its "-A NAME" rules.
type Chain struct {
	Name string
	// Policy is ACCEPT or DROP for a built-in chain, "-" for a user chain.
	Policy string
	// Rules are the rules as printed after "-A NAME ", in order, counters
	// left out.
	Rules []string
}

// Builtin says whether the chain is one of the kernel's (it has a policy).
func (c *Chain) Builtin() bool { return c.Policy != "-" }

// Table returns the named table, or nil when the ruleset has none: for a
// full save that means the table does not exist in that backend.
func (r *Ruleset) Table(name string) *Table {
	if r == nil {
		return nil
	}
	for _, t := range r.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Chain returns the named chain, or nil.
func (t *Table) Chain(name string) *Chain {
	if t == nil {
		return nil
	}
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// HasRules says whether any table holds a rule: someone uses this backend.
func (r *Ruleset) HasRules() bool {
	if r == nil {
		return false
	}
	for _, t := range r.Tables {
		for _, c := range t.Chains {
			if len(c.Rules) > 0 {
				return true
			}
		}
	}
	return false
}

// Ours says whether the mangle table holds any chain or jump of ours.
func (r *Ruleset) Ours() bool {
	t := r.Table(Mangle)
	for _, name := range Chains {
		if t.Chain(name) != nil {
			return true
		}
	}
	for _, j := range Jumps {
		if count(t.Chain(j.From), j.Spec()) > 0 {
			return true
		}
	}
	return false
}

// Parse reads iptables-save (or ip6tables-save) output, from either backend,
// with or without counters (-c). Comment lines are skipped; anything else it
// does not understand is an error naming the line, because acting on a
// misread firewall could delete someone else's rule.
func Parse(text string) (*Ruleset, error) {
	r := &Ruleset{}
	var cur *Table
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		bad := func(why string) error { return fmt.Errorf("iptables-save line %d %q: %s", n+1, line, why) }
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			// iptables-nft-save says so when it cannot show a table.
			if name, ok := strings.CutPrefix(line, "# Table `"); ok {
				if name, _, ok = strings.Cut(name, "' is incompatible"); ok {
					r.Incompatible = append(r.Incompatible, name)
				}
			}
		case strings.HasPrefix(line, "*"):
			if cur != nil {
				return nil, bad("a table starts before COMMIT")
			}
			cur = &Table{Name: line[1:]}
			if cur.Name == "" || r.Table(cur.Name) != nil {
				return nil, bad("no table name, or a table given twice")
			}
		case line == "COMMIT":
			if cur == nil {
				return nil, bad("COMMIT outside a table")
			}
			r.Tables = append(r.Tables, cur)
			cur = nil
		case strings.HasPrefix(line, ":"):
			fields := strings.Fields(line[1:])
			if cur == nil || len(fields) < 2 || cur.Chain(fields[0]) != nil {
				return nil, bad("a chain outside a table, without a policy, or given twice")
			}
			cur.Chains = append(cur.Chains, &Chain{Name: fields[0], Policy: fields[1]})
		default:
			// "[packets:bytes] -A CHAIN spec" with -c.
			if strings.HasPrefix(line, "[") {
				_, line, _ = strings.Cut(line, "] ")
			}
			rest, ok := strings.CutPrefix(line, "-A ")
			if !ok || cur == nil {
				return nil, bad("not a rule of a table")
			}
			name, spec, _ := strings.Cut(rest, " ")
			c := cur.Chain(name)
			if c == nil {
				return nil, bad("a rule in a chain not declared")
			}
			c.Rules = append(c.Rules, strings.TrimSpace(spec))
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("iptables-save: table %s has no COMMIT (output cut short?)", cur.Name)
	}
	return r, nil
}

// String renders the ruleset as iptables-save does, without comments and
// counters, so tests and fakes can compare whole states as text.
func (r *Ruleset) String() string {
	var b strings.Builder
	for _, t := range r.Tables {
		fmt.Fprintf(&b, "*%s\n", t.Name)
		for _, c := range t.Chains {
			fmt.Fprintf(&b, ":%s %s [0:0]\n", c.Name, c.Policy)
		}
		for _, c := range t.Chains {
			for _, rule := range c.Rules {
				fmt.Fprintf(&b, "-A %s %s\n", c.Name, rule)
			}
		}
		b.WriteString("COMMIT\n")
	}
	for _, name := range r.Incompatible {
		fmt.Fprintf(&b, "# Table `%s' is incompatible, use 'nft' tool.\n", name)
	}
	return b.String()
}

// Clone is a deep copy.
func (r *Ruleset) Clone() *Ruleset {
	out := &Ruleset{Incompatible: append([]string(nil), r.Incompatible...)}
	for _, t := range r.Tables {
		nt := &Table{Name: t.Name}
		for _, c := range t.Chains {
			nt.Chains = append(nt.Chains, &Chain{Name: c.Name, Policy: c.Policy, Rules: append([]string(nil), c.Rules...)})
		}
		out.Tables = append(out.Tables, nt)
	}
	return out
}

// count is how often the chain holds exactly this rule.
func count(c *Chain, spec string) int {
	if c == nil {
		return 0
	}
	n := 0
	for _, r := range c.Rules {
		if r == spec {
			n++
		}
	}
	return n
}
