package fix

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// IPTables is the part of github.com/coreos/go-iptables the MSS applier
// uses, for one family; *iptables.IPTables satisfies it, tests use a fake.
type IPTables interface {
	List(table, chain string) ([]string, error)
	ChainExists(table, chain string) (bool, error)
	NewChain(table, chain string) error
	Append(table, chain string, rulespec ...string) error
	Insert(table, chain string, pos int, rulespec ...string) error
	Delete(table, chain string, rulespec ...string) error
	DeleteById(table, chain string, id int) error
	ClearAndDeleteChain(table, chain string) error
}

// Backend is the iptables flavour: the same commands reach the kernel
// through nf_tables or through the legacy xtables interface, and rules made
// through one are invisible to the other.
type Backend string

const (
	BackendAuto   Backend = ""
	BackendNFT    Backend = "nft"
	BackendLegacy Backend = "legacy"
)

// ErrMSSUnavailable marks errors that mean this host cannot clamp at all
// (no iptables, no TCPMSS target); retrying will not help, the MTU part is
// unaffected.
var ErrMSSUnavailable = errors.New("MSS clamping unavailable")

type unavailableError struct{ why string }

func (e *unavailableError) Error() string {
	return "MSS clamping unavailable: " + e.why + "; the MTU part still works"
}
func (e *unavailableError) Is(target error) bool { return target == ErrMSSUnavailable }

// Unavailable builds the error for a host that cannot clamp.
func Unavailable(why string) error { return &unavailableError{why: why} }

// Netfilter is the MSS applier: our chains in the mangle table of each
// family, through one backend.
type Netfilter struct {
	Backend Backend
	// Why the backend was chosen, for status and dry-run.
	Why    string
	Tables map[Family]IPTables
	// Missing names the families that cannot be used and why (no ip6tables).
	Missing map[Family]string
}

// Describe is the backend in status words, e.g. "nft: the default iptables".
func (n *Netfilter) Describe() string {
	s := string(n.Backend)
	if n.Why != "" {
		s += ": " + n.Why
	}
	for _, f := range Families {
		if why, ok := n.Missing[f]; ok {
			s += fmt.Sprintf("; no %s (%s)", f.Tool(), why)
		}
	}
	return s
}

// Available lists the families this applier can change, in order.
func (n *Netfilter) Available() []Family {
	var out []Family
	for _, f := range Families {
		if n.Tables[f] != nil {
			out = append(out, f)
		}
	}
	return out
}

// ourLines is a chain's rules as `iptables -S` prints them, without the
// "-N"/"-P" line that heads the listing.
func ourLines(ipt IPTables, chain string) ([]string, error) {
	lines, err := ipt.List(MangleTable, chain)
	if err != nil {
		return nil, err
	}
	out := lines[:0:0]
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			out = append(out, l)
		}
	}
	return out, nil
}

func lines(rules []MSSRule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.line()
	}
	return out
}

func countLine(ls []string, l string) int {
	n := 0
	for _, x := range ls {
		if x == l {
			n++
		}
	}
	return n
}

// Check compares the firewall with the plan without changing anything.
// It returns the state and, when it differs, what differs.
func (n *Netfilter) Check(m *MSSPlan) (MSSState, string, error) {
	present, differs := false, []string{}
	for _, f := range n.Available() {
		ipt := n.Tables[f]
		for _, chain := range []string{ChainIn, ChainOut} {
			exists, err := ipt.ChainExists(MangleTable, chain)
			if err != nil {
				return MSSUnknown, "", fmt.Errorf("%s -t %s: %w", f.Tool(), MangleTable, err)
			}
			if !exists {
				if m.Clamp {
					differs = append(differs, fmt.Sprintf("%s chain %s missing", f.Tool(), chain))
				}
				continue
			}
			present = true
			if !m.Clamp {
				continue
			}
			have, err := ourLines(ipt, chain)
			if err != nil {
				return MSSUnknown, "", err
			}
			want := lines(filterChain(m.wanted(f), chain))
			if !slices.Equal(have, want) {
				differs = append(differs, fmt.Sprintf("%s chain %s has %d rules, %d wanted", f.Tool(), chain, len(have), len(want)))
			}
		}
		for _, j := range mssJumps(f) {
			have, err := ourLines(ipt, j.Chain)
			if err != nil {
				return MSSUnknown, "", err
			}
			c := countLine(have, j.line())
			present = present || c > 0
			if m.Clamp && c != 1 {
				differs = append(differs, fmt.Sprintf("%s %s jumps to %s %d times", f.Tool(), j.Chain, j.Spec[len(j.Spec)-1], c))
			}
		}
	}
	switch {
	case !m.Clamp && present:
		return MSSPresent, "", nil
	case !m.Clamp:
		return MSSAbsent, "", nil
	case len(differs) == 0:
		return MSSInSync, "", nil
	case !present:
		return MSSAbsent, "", nil
	}
	return MSSDiffers, strings.Join(differs, ", "), nil
}

func filterChain(rules []MSSRule, chain string) []MSSRule {
	var out []MSSRule
	for _, r := range rules {
		if r.Chain == chain {
			out = append(out, r)
		}
	}
	return out
}

// Sync makes our chains hold exactly the plan's rules and each built-in
// chain exactly one jump to them. A chain that differs is rewritten by
// appending the wanted rules before deleting the old ones, so no SYN passes
// unclamped while it happens. It reports what it changed; nothing when the
// firewall already matched, so repeated calls are cheap and idempotent.
func (n *Netfilter) Sync(m *MSSPlan) ([]string, error) {
	var done []string
	for _, f := range n.Available() {
		ipt := n.Tables[f]
		for _, chain := range []string{ChainIn, ChainOut} {
			exists, err := ipt.ChainExists(MangleTable, chain)
			if err != nil {
				return done, fmt.Errorf("%s -t %s: %w", f.Tool(), MangleTable, err)
			}
			if !exists {
				if err := ipt.NewChain(MangleTable, chain); err != nil {
					return done, classify(f, fmt.Sprintf("creating chain %s", chain), err)
				}
				done = append(done, fmt.Sprintf("%s %s: created chain %s", f.Tool(), MangleTable, chain))
			}
			have, err := ourLines(ipt, chain)
			if err != nil {
				return done, err
			}
			want := filterChain(m.wanted(f), chain)
			if slices.Equal(have, lines(want)) {
				continue
			}
			for _, r := range want {
				if err := ipt.Append(MangleTable, chain, r.Spec...); err != nil {
					return done, classify(f, "adding "+r.String(), err)
				}
			}
			for range have {
				if err := ipt.DeleteById(MangleTable, chain, 1); err != nil {
					return done, fmt.Errorf("%s -t %s: deleting an old rule of %s: %w", f.Tool(), MangleTable, chain, err)
				}
			}
			done = append(done, fmt.Sprintf("%s %s %s: %d rules written (%d were there)", f.Tool(), MangleTable, chain, len(want), len(have)))
		}
		for _, j := range mssJumps(f) {
			have, err := ourLines(ipt, j.Chain)
			if err != nil {
				return done, err
			}
			c := countLine(have, j.line())
			if c == 0 {
				// First, so an ACCEPT someone put earlier in the chain
				// cannot stop the packet before it is clamped.
				if err := ipt.Insert(MangleTable, j.Chain, 1, j.Spec...); err != nil {
					return done, classify(f, "adding "+j.String(), err)
				}
				done = append(done, "added "+j.String())
			}
			for ; c > 1; c-- {
				if err := ipt.Delete(MangleTable, j.Chain, j.Spec...); err != nil {
					return done, fmt.Errorf("%s: removing a duplicate jump: %w", f.Tool(), err)
				}
				done = append(done, "removed a duplicate "+j.String())
			}
		}
	}
	return done, nil
}

// Remove deletes our jumps and chains of every family, leaving the mangle
// table as it was before wslmtu touched it. Missing pieces are fine.
func (n *Netfilter) Remove() ([]string, error) {
	var done []string
	for _, f := range n.Available() {
		ipt := n.Tables[f]
		for _, j := range mssJumps(f) {
			have, err := ourLines(ipt, j.Chain)
			if err != nil {
				return done, err
			}
			for c := countLine(have, j.line()); c > 0; c-- {
				if err := ipt.Delete(MangleTable, j.Chain, j.Spec...); err != nil {
					return done, fmt.Errorf("%s: removing %s: %w", f.Tool(), j, err)
				}
				done = append(done, "removed "+j.String())
			}
		}
		for _, chain := range []string{ChainIn, ChainOut} {
			exists, err := ipt.ChainExists(MangleTable, chain)
			if err != nil {
				return done, fmt.Errorf("%s -t %s: %w", f.Tool(), MangleTable, err)
			}
			if !exists {
				continue
			}
			if err := ipt.ClearAndDeleteChain(MangleTable, chain); err != nil {
				return done, fmt.Errorf("%s -t %s: deleting chain %s: %w", f.Tool(), MangleTable, chain, err)
			}
			done = append(done, fmt.Sprintf("%s %s: deleted chain %s", f.Tool(), MangleTable, chain))
		}
	}
	return done, nil
}

// classify turns a kernel without the TCPMSS target (some WSL kernels
// shipped without it) into ErrMSSUnavailable, so callers stop retrying.
func classify(f Family, what string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "TCPMSS") || strings.Contains(msg, "tcpmss") ||
		strings.Contains(msg, "No chain/target/match") || strings.Contains(msg, "Couldn't load") ||
		strings.Contains(msg, "table `mangle'") {
		return Unavailable(fmt.Sprintf("%s: %s: %s", f.Tool(), what, strings.TrimSpace(msg)))
	}
	return fmt.Errorf("%s: %s: %w", f.Tool(), what, err)
}
