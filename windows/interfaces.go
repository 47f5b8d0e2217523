package windows

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// IPInterface is one row of Windows' IP interface table (GetIpInterfaceTable:
// one row per interface and address family), with the interface's name.
type IPInterface struct {
	Name      string `json:"name"`
	Index     uint32 `json:"index,omitempty"`
	Family    string `json:"family"` // "ipv4" or "ipv6"
	MTU       uint32 `json:"mtu"`    // NlMtu
	Connected bool   `json:"connected"`
	// Loopback is the software loopback. WSL does not leave it out; it only
	// never wins, its MTU being 4294967295.
	Loopback bool `json:"loopback,omitempty"`
}

// IsWSLAdapter reports WSL's own Hyper-V adapter ("vEthernet (WSL)", or
// "vEthernet (WSL (Hyper-V firewall))" on newer builds). WSL counts it like
// any other adapter, so lowering it lowers eth0.
func (i IPInterface) IsWSLAdapter() bool {
	return strings.HasPrefix(i.Name, "vEthernet (WSL")
}

// key tells interfaces apart; the rows of one interface share it.
func (i IPInterface) key() string { return i.Name + "#" + strconv.FormatUint(uint64(i.Index), 10) }

// InterfaceTable reads the IP interface table as WSL does. It is the only
// Windows API `status` calls, so tests replace it with a fake that records
// the calls; the real one (IPHelper) exists on Windows only.
type InterfaceTable interface {
	IPInterfaces() ([]IPInterface, error)
}

// OuterChoice is the answer to "which Windows adapter sets eth0's MTU".
type OuterChoice struct {
	Adapter IPInterface `json:"adapter"`
	// MTU WSL pushes into eth0 in NAT and consomme modes.
	MTU uint32 `json:"mtu"`
	// Reason is one sentence for status output and logs.
	Reason string `json:"reason"`
	// Considered lists the connected rows, smallest MTU first.
	Considered []IPInterface `json:"considered,omitempty"`
}

// TunnelMTUFits is the largest WireGuard tunnel MTU inside WSL whose
// encapsulated packets cross this eth0 without fragmentation over an IPv4 or
// an IPv6 underlay.
func (c OuterChoice) TunnelMTUFits() int {
	mtu, _, _ := tunnel.Spec{Kind: tunnel.WireGuard}.LargestTunnelMTU(int(c.MTU))
	return mtu
}

// MinimumConnected applies WSL's rule for eth0's MTU
// (GetMinimumConnectedInterfaceMtu, src/windows/common/WslCoreNetworkingSupport.cpp
// in https://github.com/microsoft/WSL): the smallest NlMtu over every
// connected row of the IP interface table, IPv4 and IPv6 alike, vEthernet
// (WSL) and the loopback included, with no floor and no cap.
//
// WSL takes a value, not an adapter. The adapter named is one whose row has
// that value; on a tie a real adapter goes before WSL's own and the
// loopback, IPv4 before IPv6, then the lower interface index and the name,
// so the answer does not depend on the order of the rows.
func MinimumConnected(rows []IPInterface) (OuterChoice, error) {
	var conn []IPInterface
	for _, r := range rows {
		if r.Connected {
			conn = append(conn, r)
		}
	}
	if len(conn) == 0 {
		return OuterChoice{}, errors.New("no connected IP interface on Windows: WSL pushes no MTU and eth0 keeps the one it has")
	}
	slices.SortStableFunc(conn, compareRows)
	best := conn[0]
	c := OuterChoice{Adapter: best, MTU: best.MTU, Considered: conn}
	if best.MTU == math.MaxUint32 {
		// Only the loopback is connected: WSL offers eth0 this value, and
		// Linux refuses an MTU above the device's maximum.
		return OuterChoice{}, fmt.Errorf("only %s is connected (MTU %d): WSL offers eth0 that value, more than Linux accepts, so no adapter sets eth0 now", best.Name, best.MTU)
	}

	// The other interfaces (not rows) at the same value, and whether any
	// other adapter is connected at all.
	var tied []string
	seen := map[string]bool{best.key(): true}
	others := 0
	for _, r := range conn[1:] {
		if r.Loopback || seen[r.key()] {
			continue
		}
		seen[r.key()] = true
		others++
		if r.MTU == best.MTU {
			tied = append(tied, r.Name)
		}
	}
	switch {
	case len(tied) > 0:
		names := append([]string{best.Name}, tied...)
		c.Reason = fmt.Sprintf("%s (MTU %d) are the smallest connected adapters: WSL copies %d into eth0",
			joinAnd(names), best.MTU, best.MTU)
	case others == 0:
		c.Reason = fmt.Sprintf("%s is the only connected adapter: WSL copies it into eth0", label(best, conn))
	default:
		c.Reason = fmt.Sprintf("%s is the smallest connected adapter: WSL copies it into eth0", label(best, conn))
	}
	if best.IsWSLAdapter() && len(tied) == 0 && others > 0 {
		c.Reason += "; it is WSL's own adapter, which WSL counts too, so a lowered vEthernet (WSL) MTU lowers eth0"
	}
	return c, nil
}

// compareRows orders rows smallest MTU first, then by the tie-break
// MinimumConnected documents.
func compareRows(a, b IPInterface) int {
	rank := func(r IPInterface) int {
		switch {
		case r.Loopback:
			return 2
		case r.IsWSLAdapter():
			return 1
		}
		return 0
	}
	return cmp.Or(
		cmp.Compare(a.MTU, b.MTU),
		cmp.Compare(rank(a), rank(b)),
		cmp.Compare(familyOrder(a.Family), familyOrder(b.Family)),
		cmp.Compare(a.Index, b.Index),
		cmp.Compare(a.Name, b.Name),
	)
}

func familyOrder(f string) int {
	switch f {
	case "ipv4":
		return 0
	case "ipv6":
		return 1
	}
	return 2
}

// label names the winning row; when the interface's other family is
// connected with a different MTU, both are given, since only one counts.
func label(best IPInterface, conn []IPInterface) string {
	for _, r := range conn {
		if r.key() == best.key() && r.Family != best.Family && r.MTU != best.MTU {
			return fmt.Sprintf("%s (%s MTU %d; its %s MTU is %d)", best.Name, familyName(best.Family), best.MTU, familyName(r.Family), r.MTU)
		}
	}
	return fmt.Sprintf("%s (MTU %d)", best.Name, best.MTU)
}

func familyName(f string) string {
	switch f {
	case "ipv4":
		return "IPv4"
	case "ipv6":
		return "IPv6"
	}
	return f
}

func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
