package firewall

import (
	"errors"
	"fmt"
)

// Family is an IP version, named the way the revert record always has.
type Family string

const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// Families are both, in the order rules are listed and applied.
var Families = []Family{IPv4, IPv6}

// Tool is the iptables binary of the family, for commands and messages.
func (f Family) Tool() string {
	if f == IPv6 {
		return "ip6tables"
	}
	return "iptables"
}

// nftFamily is the nftables family iptables-nft keeps the family's tables in.
func (f Family) nftFamily() string {
	if f == IPv6 {
		return "ip6"
	}
	return "ip"
}

// Backend is the iptables flavour: the same commands reach the kernel through
// nf_tables or through the legacy xtables interface, and rules made through
// one are invisible to the other.
type Backend string

const (
	// Auto (the zero value) chooses: the backend holding our chains, else
	// the one holding any rules, else the default `iptables`.
	Auto   Backend = ""
	NFT    Backend = "nft"
	Legacy Backend = "legacy"
)

// The table and the chains of our own.
const (
	Mangle   = "mangle"
	ChainIn  = "WSLMTU-IN"  // jumped from PREROUTING: SYN and SYN-ACK arriving on a tunnel
	ChainOut = "WSLMTU-OUT" // jumped from POSTROUTING: leaving on a tunnel, local and forwarded
)

// Chains are ours, in the order they are written.
var Chains = []string{ChainIn, ChainOut}

// Jump is the rule in a built-in chain that sends TCP into one of ours.
// PREROUTING sees every packet arriving on a tunnel and POSTROUTING every
// packet leaving on one, whether local or forwarded (a subnet router), so two
// hooks cover all four cases.
type Jump struct{ From, To string }

// Jumps are ours, one per chain.
var Jumps = []Jump{{"PREROUTING", ChainIn}, {"POSTROUTING", ChainOut}}

// Spec is the jump as iptables-save prints it after "-A PREROUTING ".
func (j Jump) Spec() string { return "-p tcp -j " + j.To }

func (j Jump) describe(f Family) string {
	return fmt.Sprintf("%s %s %s: %s", f.Tool(), Mangle, j.From, j.Spec())
}

// Rules is what one family's chains of ours must hold: each rule as
// iptables-save prints it after "-A CHAIN ", so wanted and observed compare
// as plain text.
type Rules struct {
	In  []string
	Out []string
}

func (r *Rules) chain(name string) []string {
	if name == ChainIn {
		return r.In
	}
	return r.Out
}

// ErrUnavailable marks errors that mean this host cannot clamp at all (no
// iptables, no TCPMSS target): retrying will not help, the MTU part is
// unaffected.
var ErrUnavailable = errors.New("MSS clamping unavailable")

type unavailableError struct{ why string }

func (e *unavailableError) Error() string {
	return "MSS clamping unavailable: " + e.why + "; the MTU part still works"
}

func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unavailable builds the error for a host that cannot clamp.
func Unavailable(why string) error { return &unavailableError{why: why} }

// Reason is why clamping is unavailable, without the wrapping words; any
// other error as it is.
func Reason(err error) string {
	var u *unavailableError
	if errors.As(err, &u) {
		return u.why
	}
	return err.Error()
}
