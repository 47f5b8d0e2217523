package firewall

import (
	"fmt"
	"slices"
	"strings"
)

// Patch turns one family's observed mangle table into the wanted one. Its
// lines go to iptables-restore --noflush between "*mangle" and "COMMIT".
//
// Measured with iptables 1.8.9, both backends, in a namespace: with
// --noflush, a declared user chain (":WSLMTU-IN - [0:0]") that exists is
// flushed, and one that does not is created; the whole block then commits
// as one (nf_tables: one netlink transaction; legacy: the table replaced in
// one setsockopt), and a failing line leaves the table as it was. So a chain
// is rewritten by declaring it and appending the wanted rules in the same
// block: no SYN ever meets an empty or half-written chain, and a failed
// rewrite changes nothing. A jump is deleted by its spec (-D CHAIN spec),
// never by a position read earlier, so a rule someone inserted since cannot
// be hit.
type Patch struct {
	Family Family
	Steps  []Step
}

// Step is one change to the table.
type Step struct {
	Lines []string // iptables-restore lines
	Found string   // what differs, before the change ("iptables WSLMTU-IN has 1 rules, 2 wanted")
	Done  string   // the change, once made ("iptables mangle WSLMTU-IN: 2 rules written (1 were there)")
}

// Empty means the table is as wanted.
func (p Patch) Empty() bool { return len(p.Steps) == 0 }

// Script is the input for iptables-restore --noflush.
func (p Patch) Script() string {
	var b strings.Builder
	b.WriteString("*" + Mangle + "\n")
	for _, s := range p.Steps {
		for _, l := range s.Lines {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// Found is what differs, for plans and status.
func (p Patch) Found() []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Found)
	}
	return out
}

// Done is what the patch changed, once applied.
func (p Patch) Done() []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Done)
	}
	return out
}

// Diff gives the patch that makes have (the family's mangle table as saved;
// nil when the table does not exist) hold exactly want of ours: our chains
// with exactly their rules, and exactly one jump to each from its built-in
// chain. With want nil, the patch removes every chain and jump of ours,
// whether recorded or left over. Nobody else's rules and chains are touched.
//
// A missing jump is inserted first in its chain, so an ACCEPT someone put
// earlier cannot stop a packet before it is clamped. A jump already there is
// left where it is, even if not first: two programs that each insist on
// being first would otherwise move their rules on every check forever.
// Duplicates are all deleted and one jump inserted first.
func Diff(f Family, want *Rules, have *Table) Patch {
	p := Patch{Family: f}
	tool := f.Tool()
	if want == nil {
		for _, j := range Jumps {
			n := count(have.Chain(j.From), j.Spec())
			if n == 0 {
				continue
			}
			s := Step{Found: fmt.Sprintf("%s %s jumps to %s", tool, j.From, j.To), Done: "removed " + j.describe(f)}
			for range n {
				s.Lines = append(s.Lines, fmt.Sprintf("-D %s %s", j.From, j.Spec()))
			}
			if n > 1 {
				s.Found += fmt.Sprintf(" %d times", n)
				s.Done += fmt.Sprintf(" (%d times)", n)
			}
			p.Steps = append(p.Steps, s)
		}
		for _, name := range Chains {
			if c := have.Chain(name); c != nil {
				p.Steps = append(p.Steps, Step{
					Lines: []string{"-F " + name, "-X " + name},
					Found: fmt.Sprintf("%s chain %s exists", tool, name),
					Done:  fmt.Sprintf("%s %s: deleted chain %s", tool, Mangle, name),
				})
			}
		}
		return p
	}
	// Chains before jumps: a jump may only name a chain that exists.
	for _, name := range Chains {
		rules := want.chain(name)
		c := have.Chain(name)
		if c != nil && slices.Equal(c.Rules, rules) {
			continue
		}
		s := Step{Lines: []string{fmt.Sprintf(":%s - [0:0]", name)}}
		for _, r := range rules {
			s.Lines = append(s.Lines, fmt.Sprintf("-A %s %s", name, r))
		}
		if c == nil {
			s.Found = fmt.Sprintf("%s chain %s missing", tool, name)
			s.Done = fmt.Sprintf("%s %s: created chain %s with %d rules", tool, Mangle, name, len(rules))
		} else {
			s.Found = fmt.Sprintf("%s chain %s has %d rules, %d wanted", tool, name, len(c.Rules), len(rules))
			if len(c.Rules) == len(rules) {
				s.Found = fmt.Sprintf("%s chain %s has other rules than wanted", tool, name)
			}
			s.Done = fmt.Sprintf("%s %s %s: %d rules written (%d were there)", tool, Mangle, name, len(rules), len(c.Rules))
		}
		p.Steps = append(p.Steps, s)
	}
	for _, j := range Jumps {
		n := count(have.Chain(j.From), j.Spec())
		if n == 1 {
			continue
		}
		s := Step{Found: fmt.Sprintf("%s %s does not jump to %s", tool, j.From, j.To), Done: "added " + j.describe(f)}
		for range n {
			s.Lines = append(s.Lines, fmt.Sprintf("-D %s %s", j.From, j.Spec()))
		}
		s.Lines = append(s.Lines, fmt.Sprintf("-I %s 1 %s", j.From, j.Spec()))
		if n > 1 {
			s.Found = fmt.Sprintf("%s %s jumps to %s %d times", tool, j.From, j.To, n)
			s.Done = fmt.Sprintf("removed %d duplicate jumps: %s", n-1, j.describe(f))
		}
		p.Steps = append(p.Steps, s)
	}
	return p
}
