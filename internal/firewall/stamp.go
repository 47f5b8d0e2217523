package firewall

import (
	"slices"
	"strings"
	"sync"
)

// Stamp identifies one namespace's nf_tables ruleset at one moment. The
// kernel counts every committed change to any nf_tables table of a
// namespace, whoever makes it (iptables-nft of either family, nft, another
// program): its generation (NFT_MSG_GETGEN). A namespace's cookie is never
// reused while the machine runs, so a Stamp names one ruleset exactly.
type Stamp struct {
	// Cookie is 0 where the kernel cannot say (before Linux 5.14); then
	// nothing is remembered.
	Cookie uint64
	Gen    uint32
	// IPv4Tables and IPv6Tables count the nf_tables tables of the
	// families (NFT_MSG_GETTABLE): with none, iptables-nft-save prints
	// nothing, so it is not started.
	IPv4Tables, IPv6Tables int
	// IPv4Ours and IPv6Ours say whether the family's mangle table holds a
	// chain of ours (NFT_MSG_GETCHAIN). A jump of ours cannot exist
	// without its chain, so with neither there is nothing of ours.
	IPv4Ours, IPv6Ours bool
}

func (s *Stamp) empty(f Family) bool {
	if s == nil {
		return false
	}
	if f == IPv6 {
		return s.IPv6Tables == 0
	}
	return s.IPv4Tables == 0
}

// remembered holds, per namespace, the last nf_tables state read and the
// generation it was read at (taken before the saves, so a change made
// during the read shows as a newer generation). While the generation is
// unchanged that state is still exact, and reading it again would start two
// processes (about 12 ms here) to learn nothing: the periodic check of a
// firewall nobody touched costs one netlink round trip instead. Legacy
// tables have no generation and are always read.
var remembered struct {
	sync.Mutex
	states map[uint64]rememberedState
}

type rememberedState struct {
	gen uint32
	st  *State
}

// maxRemembered bounds the map in a process that sees many namespaces
// (tests); forgetting only costs a read.
const maxRemembered = 64

func recall(s Stamp) *State {
	if s.Cookie == 0 {
		return nil
	}
	remembered.Lock()
	defer remembered.Unlock()
	e, ok := remembered.states[s.Cookie]
	if !ok || e.gen != s.Gen {
		return nil
	}
	c := *e.st // callers may set Why; the rulesets are never changed
	return &c
}

func remember(s Stamp, st *State) {
	if s.Cookie == 0 {
		return
	}
	remembered.Lock()
	defer remembered.Unlock()
	if remembered.states == nil || len(remembered.states) >= maxRemembered {
		remembered.states = map[uint64]rememberedState{}
	}
	c := *st
	remembered.states[s.Cookie] = rememberedState{gen: s.Gen, st: &c}
}

// readNFT is readBackend for nf_tables, skipping the saves while the
// namespace's generation shows nothing changed since the last read.
func readNFT(r Runner) (*State, error) {
	s, err := r.Stamp()
	if err != nil {
		return readBackend(r, NFT, nil) // no nf_tables netlink: just read
	}
	if st := recall(s); st != nil {
		return st, nil
	}
	st, err := readBackend(r, NFT, &s)
	if err == nil {
		remember(s, st)
	}
	return st, err
}

// MayHoldOurs says, starting no process where it can, whether any backend
// may hold a chain or jump of ours: nf_tables is asked over netlink, legacy
// by the tables that exist (a legacy mangle table may hold ours; without
// one, nothing can). Looking for leftovers on every run without clamping
// then costs nothing on a host that has none.
func MayHoldOurs(r Runner) bool {
	s, err := r.Stamp()
	if err != nil || s.IPv4Ours || s.IPv6Ours {
		return true
	}
	for _, f := range Families {
		if _, err := toolsFor(r, Legacy, f); err != nil {
			continue
		}
		names, err := r.NetFile(f.namesFile())
		if err != nil || slices.Contains(strings.Fields(names), Mangle) {
			return true
		}
	}
	return false
}
