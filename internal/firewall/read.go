package firewall

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Runner starts programs inside one network namespace. Exec is the real
// one; tests use a fake that keeps rulesets in memory.
type Runner interface {
	// Resolve finds a program in PATH and follows its symlinks, so
	// "iptables" names the xtables-nft-multi or xtables-legacy-multi it
	// really is. A missing program gives an error matching exec.ErrNotFound.
	Resolve(name string) (string, error)
	// Run runs a program with stdin and returns its stdout; a failure's
	// error carries its stderr.
	Run(name string, args []string, stdin string) (string, error)
	// NetFile reads /proc/thread-self/net/NAME as seen from inside the
	// namespace; a file that does not exist reads as empty.
	NetFile(name string) (string, error)
	// Stamp is the namespace's nf_tables generation (see Stamp).
	Stamp() (Stamp, error)
	Close() error
}

// Opener gives the Runner of a network namespace given as a path
// (/var/run/netns/NAME, /proc/PID/ns/net); "" is the caller's current one.
type Opener func(netns string) (Runner, error)

// xtablesWait bounds how long iptables-restore waits for another program's
// xtables lock (legacy; nft ignores it), so a stuck firewall tool delays a
// sync instead of hanging it.
const xtablesWait = "--wait=10"

// State is one look at the firewall: the backend in use and each usable
// family's ruleset, saved once.
type State struct {
	Backend Backend
	// Why this backend, for status and dry-run.
	Why string
	// Sets are the families' whole saves (every table, so a missing
	// *mangle means the table does not exist).
	Sets map[Family]*Ruleset
	// Missing names the families that cannot be used, and why.
	Missing map[Family]string
	tools   map[Family]tools
}

type tools struct{ save, restore string }

// Families lists the usable families, in order.
func (s *State) Families() []Family {
	var out []Family
	for _, f := range Families {
		if s.Sets[f] != nil {
			out = append(out, f)
		}
	}
	return out
}

// Mangle is the family's mangle table; nil when it does not exist.
func (s *State) Mangle(f Family) *Table { return s.Sets[f].Table(Mangle) }

// Ours says whether any family holds a chain or jump of ours.
func (s *State) Ours() bool {
	for _, set := range s.Sets {
		if set.Ours() {
			return true
		}
	}
	return false
}

// Describe is the backend in status words, e.g. "nft: the default iptables".
func (s *State) Describe() string {
	d := string(s.Backend)
	if s.Why != "" {
		d += ": " + s.Why
	}
	for _, f := range Families {
		if why, ok := s.Missing[f]; ok {
			d += fmt.Sprintf("; no %s (%s)", f.Tool(), why)
		}
	}
	return d
}

// Read looks at the firewall once: one save per family of backend b, or,
// with b Auto, of the backend chosen as follows. Rules made through one
// backend are invisible through the other, so the one already holding our
// chains wins, else the one holding any rules (ours next to them would be
// in a second, unseen firewall), else the default `iptables`, which is what
// the user's own commands reach.
//
// Saves are whole (no -t mangle), for two measured reasons:
// iptables-legacy-save -t mangle creates the legacy mangle table in a
// namespace that had none (tables are made on first use), and
// iptables-nft-save -t mangle prints an empty table that does not exist, so
// neither could tell whether the table existed before us.
//
// Through nf_tables, a state read before is returned again while the
// namespace's generation shows no change since (see Stamp).
func Read(r Runner, b Backend) (*State, error) {
	switch b {
	case Auto:
		return choose(r)
	case NFT:
		return readNFT(r)
	}
	return readBackend(r, b, nil)
}

func newState(r Runner, b Backend) *State {
	st := &State{Backend: b, Sets: map[Family]*Ruleset{}, Missing: map[Family]string{}, tools: map[Family]tools{}}
	for _, f := range Families {
		t, err := toolsFor(r, b, f)
		if err != nil {
			st.Missing[f] = err.Error()
			continue
		}
		st.tools[f] = t
	}
	return st
}

// readBackend saves each family of b; through nf_tables, not a family the
// stamp shows without tables.
func readBackend(r Runner, b Backend, s *Stamp) (*State, error) {
	st := newState(r, b)
	if len(st.tools) == 0 {
		return nil, Unavailable(missingWhy(st.Missing))
	}
	sets := make([]*Ruleset, len(Families))
	errs := parallel([]int{0, 1}, func(i int) error {
		t, ok := st.tools[Families[i]]
		if !ok {
			return nil
		}
		if s.empty(Families[i]) {
			sets[i] = &Ruleset{}
			return nil
		}
		var err error
		sets[i], err = save(r, t.save)
		return err
	})
	for i, f := range Families {
		if sets[i] != nil {
			st.Sets[f] = sets[i]
		}
	}
	return st, st.settle(errs)
}

// choose reads both backends as cheaply as it can: first the lists of
// tables that exist in the namespace (nf_tables over netlink,
// /proc/net/ip_tables_names for legacy; no process), then the saves of the
// families that have tables, nft's in any case when it is chosen. On a
// namespace without rules that is no process at all.
func choose(r Runner) (*State, error) {
	nft, legacy := newState(r, NFT), newState(r, Legacy)
	if len(nft.tools) == 0 && len(legacy.tools) == 0 {
		if _, err := r.Resolve("iptables"); err != nil {
			return nil, Unavailable("iptables is not installed (apt install iptables)")
		}
		return nil, Unavailable(missingWhy(nft.Missing) + "; " + missingWhy(legacy.Missing))
	}
	// Both families' nft saves and legacy table lists at once, then the
	// legacy saves that are needed. A backend whose save fails (a kernel
	// without nf_tables) is treated as unusable for that family.
	var stamp *Stamp
	if s, err := r.Stamp(); err == nil {
		stamp = &s
	}
	legacyTables := map[Family]string{}
	var mu sync.Mutex
	type job struct {
		f      Family
		legacy bool
	}
	errs := parallel([]job{{IPv4, false}, {IPv6, false}, {IPv4, true}, {IPv6, true}}, func(j job) error {
		if j.legacy {
			if _, ok := legacy.tools[j.f]; !ok {
				return nil
			}
			names, err := r.NetFile(j.f.namesFile())
			mu.Lock()
			defer mu.Unlock()
			legacyTables[j.f] = strings.TrimSpace(names)
			return err
		}
		if t, ok := nft.tools[j.f]; ok {
			set, err := &Ruleset{}, error(nil)
			if !stamp.empty(j.f) {
				set, err = save(r, t.save)
			}
			mu.Lock()
			defer mu.Unlock()
			nft.use(j.f, set, err)
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	parallel(Families, func(f Family) error {
		t, ok := legacy.tools[f]
		if !ok {
			return nil
		}
		set, err := &Ruleset{}, error(nil)
		if legacyTables[f] != "" {
			set, err = save(r, t.save)
		}
		mu.Lock()
		defer mu.Unlock()
		legacy.use(f, set, err)
		return nil
	})
	pick := func(st *State, why string) *State { st.Why = why; return st }
	var st *State
	nftRules, legacyRules := hasRules(nft), hasRules(legacy)
	switch nftOurs, legacyOurs := nft.Ours(), legacy.Ours(); {
	case nftOurs && !legacyOurs:
		st = pick(nft, "our chains are there")
	case legacyOurs && !nftOurs:
		st = pick(legacy, "our chains are there")
	case nftRules && !legacyRules:
		st = pick(nft, "iptables-nft already holds rules")
	case legacyRules && !nftRules:
		st = pick(legacy, "iptables-legacy already holds rules")
	default:
		def, err := defaultBackend(r)
		if err != nil {
			return nil, err
		}
		st = nft
		if def == Legacy {
			st = legacy
		}
		st = pick(st, "no rules in either backend; the default iptables")
		if nftRules {
			st.Why = "both backends hold rules; the default iptables"
		}
	}
	return st, st.settle(nil)
}

// use keeps a family's save, or the reason it cannot be used.
func (s *State) use(f Family, set *Ruleset, err error) {
	if err != nil {
		s.Missing[f] = err.Error()
		delete(s.tools, f)
		return
	}
	s.Sets[f] = set
}

func hasRules(st *State) bool {
	for _, set := range st.Sets {
		if set.HasRules() {
			return true
		}
	}
	return false
}

// settle fails on a save that failed, and turns a family whose mangle
// table iptables cannot change into a missing one.
func (s *State) settle(errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for f, set := range s.Sets {
		for _, name := range set.Incompatible {
			if name == Mangle {
				s.Missing[f] = fmt.Sprintf("its %s table was written by nft directly, which %s-%s cannot change", Mangle, f.Tool(), s.Backend)
				delete(s.Sets, f)
			}
		}
	}
	if len(s.Sets) == 0 {
		return Unavailable(missingWhy(s.Missing))
	}
	return nil
}

func missingWhy(m map[Family]string) string {
	var out []string
	for _, f := range Families {
		if why, ok := m[f]; ok {
			out = append(out, why)
		}
	}
	return strings.Join(out, "; ")
}

func (f Family) namesFile() string {
	if f == IPv6 {
		return "ip6_tables_names"
	}
	return "ip_tables_names"
}

func save(r Runner, tool string) (*Ruleset, error) {
	out, err := r.Run(tool, nil, "")
	if err != nil {
		return nil, err
	}
	set, err := Parse(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tool, err)
	}
	return set, nil
}

// toolsFor finds the save and restore programs of a backend: the suffixed
// names first (iptables-nft-save), then the plain ones when they are that
// backend (iptables before 1.8 had only legacy and no suffixed names).
func toolsFor(r Runner, b Backend, f Family) (tools, error) {
	var t tools
	var tried []string
	for _, kind := range []string{"save", "restore"} {
		found := ""
		for _, name := range []string{f.Tool() + "-" + string(b) + "-" + kind, f.Tool() + "-" + kind} {
			path, err := r.Resolve(name)
			if err != nil {
				tried = append(tried, name+" not found")
				continue
			}
			if !strings.Contains(name, "-"+string(b)+"-") {
				mode, err := modeOf(r, name, path)
				if err != nil {
					tried = append(tried, err.Error())
					continue
				}
				if mode != b {
					tried = append(tried, fmt.Sprintf("%s is %s", name, mode))
					continue
				}
			}
			found = name
			break
		}
		if found == "" {
			return tools{}, fmt.Errorf("no %s-%s for the %s backend (%s)", f.Tool(), kind, b, strings.Join(tried, ", "))
		}
		if kind == "save" {
			t.save = found
		} else {
			t.restore = found
		}
	}
	return t, nil
}

// defaultBackend is what plain `iptables` is.
func defaultBackend(r Runner) (Backend, error) {
	path, err := r.Resolve("iptables")
	if err != nil {
		return "", Unavailable("iptables is not installed (apt install iptables)")
	}
	mode, err := modeOf(r, "iptables", path)
	if err != nil {
		return "", Unavailable(err.Error())
	}
	return mode, nil
}

// modeOf tells a program's backend by the multi-call binary it links to,
// which costs no process; only a program that is not a link to one (a
// wrapper script) is asked with --version: "(nf_tables)" or "(legacy)".
func modeOf(r Runner, name, resolved string) (Backend, error) {
	switch filepath.Base(resolved) {
	case "xtables-nft-multi":
		return NFT, nil
	case "xtables-legacy-multi", "xtables-multi":
		return Legacy, nil
	}
	out, err := r.Run(name, []string{"--version"}, "")
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", name, err)
	}
	if strings.Contains(out, "nf_tables") {
		return NFT, nil
	}
	// iptables before 1.8 had only the legacy backend and did not say so.
	return Legacy, nil
}

// parallel runs fn for each item at once and returns the errors. Process
// start-up dominates every firewall operation (a few ms each), so the two
// families' saves and restores run side by side.
func parallel[T any](items []T, fn func(T) error) []error {
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(it)
		}()
	}
	wg.Wait()
	return errs
}

// Apply runs each non-empty patch through one iptables-restore --noflush
// of its family, the families side by side, and returns what was done.
// A family's patch is applied whole or not at all.
func Apply(r Runner, st *State, patches []Patch) ([]string, error) {
	errs := parallel(Families, func(f Family) error {
		for _, p := range patches {
			if p.Family == f && !p.Empty() {
				return restore(r, f, st.tools[f].restore, p.Script())
			}
		}
		return nil
	})
	var done []string
	for i, f := range Families {
		if errs[i] != nil {
			continue
		}
		for _, p := range patches {
			if p.Family == f {
				done = append(done, p.Done()...)
			}
		}
	}
	return done, errors.Join(errs...)
}

func restore(r Runner, f Family, tool, script string) error {
	if tool == "" {
		return fmt.Errorf("no %s-restore", f.Tool())
	}
	_, err := r.Run(tool, []string{"--noflush", xtablesWait}, script)
	// --wait came to iptables-restore in 1.6.2; older ones refuse it.
	if err != nil && (strings.Contains(err.Error(), "unrecognized option") || strings.Contains(err.Error(), "invalid option")) {
		_, err = r.Run(tool, []string{"--noflush"}, script)
	}
	if err != nil {
		return classify(f, err)
	}
	return nil
}

// classify turns a kernel or iptables without the TCPMSS target (some WSL
// kernels shipped without it) into ErrUnavailable, so callers stop retrying.
// Our scripts declare every chain they append to, so an append failing with
// "No such file or directory" (nf_tables) can only mean a missing extension.
func classify(f Family, err error) error {
	msg := err.Error()
	for _, s := range []string{"TCPMSS", "tcpmss", "No chain/target/match", "Couldn't load", "table `mangle'",
		"RULE_APPEND failed (No such file or directory)", "RULE_INSERT failed (No such file or directory)"} {
		if strings.Contains(msg, s) {
			return Unavailable(fmt.Sprintf("%s: %s", f.Tool(), strings.TrimSpace(msg)))
		}
	}
	return fmt.Errorf("%s: %w", f.Tool(), err)
}

// IsNotFound says whether err is a program missing from PATH.
func IsNotFound(err error) bool { return errors.Is(err, exec.ErrNotFound) }
