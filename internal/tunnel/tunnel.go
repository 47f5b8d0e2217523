package tunnel

import (
	"fmt"
	"strings"
)

// Header sizes, in bytes.
const (
	IPv4Header = 20
	IPv6Header = 40
	UDPHeader  = 8
	TCPHeader  = 20
	// WireGuardHeader is a data message's own header (type, receiver,
	// counter: 16) plus the Poly1305 tag (16).
	WireGuardHeader = 32
	// WireGuardPad is WireGuard's padding unit: the inner packet grows to a
	// multiple of 16, capped at the tunnel MTU (measured: with eth0 1280 the
	// largest inner packet that crosses is 1216, not 1220).
	WireGuardPad = 16
)

// MTU limits the kernel and IPv6 impose.
const (
	// MinIPv4MTU is the smallest MTU the kernel accepts on an IPv4 link.
	MinIPv4MTU = 68
	// MinIPv6MTU is IPv6's minimum link MTU: below it Linux deletes the
	// link's IPv6 addresses, and raising it again does not bring them back.
	MinIPv6MTU = 1280
	// MinMSS is the IPv4 default MSS every host must accept; clamping below
	// it would break peers that rely on it.
	MinMSS = 536
)

// ZeroTier sizes. zerotier-one fragments internally and sends UDP payloads of
// up to ZT_DEFAULT_PHYSMTU bytes ("not including UDP and IP overhead");
// local.conf may set a physical path MTU from 1400 to 10100.
const (
	ZeroTierPayload    = 1432
	ZeroTierMinPayload = 1400
	ZeroTierMaxPayload = 10100
)

// Underlay is the IP version of the outer packets.
type Underlay int

const (
	IPv4 Underlay = 4
	IPv6 Underlay = 6
)

// Header is the IP header of the underlay.
func (u Underlay) Header() int {
	if u == IPv6 {
		return IPv6Header
	}
	return IPv4Header
}

func (u Underlay) String() string {
	if u == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// WorstUnderlay is the one a plan sizes for: WSL's NAT may carry the tunnel
// over either, and IPv6's larger header needs the larger outer MTU (measured:
// eth0 1340 carries a 1280 WireGuard tunnel over IPv4 but not over IPv6).
const WorstUnderlay = IPv6

// Kind is a family of tunnels whose outer packets are sized alike.
type Kind string

const (
	// WireGuard: each inner packet, padded to 16 bytes, travels in one UDP
	// datagram with 32 bytes of WireGuard header; the kernel fragments the
	// datagram when it does not fit (WireGuard sends DF=0).
	WireGuard Kind = "wireguard"
	// ZeroTier fragments inner frames itself into UDP payloads of a fixed
	// physical size, so the outer MTU needed does not depend on the zt
	// interface's MTU, and lowering that does not help.
	ZeroTier Kind = "zerotier"
	// Other is any tunnel whose requirement the config states.
	Other Kind = "other"
)

// Kinds are the allowed values, in the order help texts show them.
var Kinds = []Kind{WireGuard, ZeroTier, Other}

// ParseKind checks a kind named in the config.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown tunnel kind %q (allowed: wireguard, zerotier, other)", s)
}

// Spec is how one tunnel needs its outer interface sized.
type Spec struct {
	Kind Kind `json:"kind"`
	// Payload is ZeroTier's physical UDP payload; 0 means ZeroTierPayload.
	Payload int `json:"payload,omitempty"`
	// Overhead (kind other): the outer MTU must be at least the tunnel MTU
	// plus this.
	Overhead int `json:"overhead,omitempty"`
	// OuterMTU (kind other): a fixed outer requirement, whatever the
	// tunnel's own MTU; it wins over Overhead when both are set.
	OuterMTU int `json:"outer_mtu,omitempty"`
	// Source says where the spec came from, for plan reasons: "the name",
	// "the netlink kind wireguard", "[[tunnel]] in the config".
	Source string `json:"source,omitempty"`
}

// WireGuardOverhead is what WireGuard adds to a packet on an underlay: IP,
// UDP and its own header (60 over IPv4, 80 over IPv6).
func WireGuardOverhead(u Underlay) int { return u.Header() + UDPHeader + WireGuardHeader }

func (s Spec) zeroTierPayload() int {
	if s.Payload > 0 {
		return s.Payload
	}
	return ZeroTierPayload
}

// OuterNeed is the smallest outer MTU that carries every packet of a tunnel
// whose own MTU is tunnelMTU without fragmenting it, on underlay u.
func (s Spec) OuterNeed(tunnelMTU int, u Underlay) int {
	switch s.Kind {
	case ZeroTier:
		return s.zeroTierPayload() + UDPHeader + u.Header()
	case Other:
		if s.OuterMTU > 0 {
			return s.OuterMTU
		}
		return tunnelMTU + s.Overhead
	}
	return tunnelMTU + WireGuardOverhead(u)
}

// Need is OuterNeed on the worst underlay, which is what plans size for.
func (s Spec) Need(tunnelMTU int) int { return s.OuterNeed(tunnelMTU, WorstUnderlay) }

// Reason explains Need in a plan's words, e.g.
// "tailscale0 1280 + 80 WireGuard/IPv6 overhead" or
// "zt3jnkd6ic: ZeroTier sends 1432-byte UDP payloads + 48 UDP/IPv6".
func (s Spec) Reason(name string, tunnelMTU int) string {
	u := WorstUnderlay
	switch s.Kind {
	case ZeroTier:
		return fmt.Sprintf("%s: ZeroTier sends %d-byte UDP payloads + %d UDP/%s", name, s.zeroTierPayload(), UDPHeader+u.Header(), u)
	case Other:
		if s.OuterMTU > 0 {
			return fmt.Sprintf("%s: needs an outer mtu of %d (%s)", name, s.OuterMTU, s.source())
		}
		return fmt.Sprintf("%s %d + %d overhead (%s)", name, tunnelMTU, s.Overhead, s.source())
	}
	return fmt.Sprintf("%s %d + %d WireGuard/%s overhead", name, tunnelMTU, WireGuardOverhead(u), u)
}

func (s Spec) source() string {
	if s.Source != "" {
		return s.Source
	}
	return "the config"
}

// Describe is the kind and its requirement, for status and doctor:
// "WireGuard: outer ≥ mtu + 80 (IPv6 underlay; + 60 over IPv4)".
func (s Spec) Describe(tunnelMTU int) string {
	switch s.Kind {
	case ZeroTier:
		p := s.zeroTierPayload()
		return fmt.Sprintf("ZeroTier: outer ≥ %d (IPv6 underlay; %d over IPv4): it sends %d-byte UDP payloads whatever its own mtu",
			s.OuterNeed(tunnelMTU, IPv6), s.OuterNeed(tunnelMTU, IPv4), p)
	case Other:
		if s.OuterMTU > 0 {
			return fmt.Sprintf("other: outer ≥ %d (%s)", s.OuterMTU, s.source())
		}
		return fmt.Sprintf("other: outer ≥ mtu + %d = %d (%s)", s.Overhead, tunnelMTU+s.Overhead, s.source())
	}
	return fmt.Sprintf("WireGuard: outer ≥ mtu + %d = %d (IPv6 underlay; + %d = %d over IPv4)",
		WireGuardOverhead(IPv6), s.OuterNeed(tunnelMTU, IPv6), WireGuardOverhead(IPv4), s.OuterNeed(tunnelMTU, IPv4))
}

// LargestTunnelMTU is the largest tunnel MTU whose packets all fit an outer
// MTU on the worst underlay: the target of lower-tunnel. ok is false where
// lowering the tunnel cannot help (ZeroTier, a fixed requirement), with why.
func (s Spec) LargestTunnelMTU(outer int) (mtu int, ok bool, why string) {
	switch s.Kind {
	case ZeroTier:
		return 0, false, fmt.Sprintf("ZeroTier sends %d-byte UDP payloads whatever the interface's mtu, so lowering it does not help", s.zeroTierPayload())
	case Other:
		if s.OuterMTU > 0 {
			return 0, false, fmt.Sprintf("it needs an outer mtu of %d whatever its own (%s)", s.OuterMTU, s.source())
		}
		return outer - s.Overhead, true, ""
	}
	return outer - WireGuardOverhead(WorstUnderlay), true, ""
}

// LargestInner is the largest inner packet that crosses an outer MTU
// unfragmented on underlay u; all is true when every packet of the tunnel
// fits. WireGuard pads to 16 bytes, capped at the tunnel MTU, so all fit when
// the tunnel plus overhead fits, else up to floor16(outer − overhead).
func (s Spec) LargestInner(outer, tunnelMTU int, u Underlay) (inner int, all bool) {
	if s.OuterNeed(tunnelMTU, u) <= outer {
		return tunnelMTU, true
	}
	switch s.Kind {
	case WireGuard:
		return max(0, Floor16(outer-WireGuardOverhead(u))), false
	case Other:
		if s.OuterMTU == 0 {
			return max(0, outer-s.Overhead), false
		}
	}
	// ZeroTier (and a fixed requirement) lose every large enough packet,
	// whatever its inner size; the largest that crosses is not known here.
	return 0, false
}

// Floor16 rounds down to WireGuard's padding unit.
func Floor16(n int) int {
	if n < 0 {
		return -((-n + WireGuardPad - 1) / WireGuardPad * WireGuardPad)
	}
	return n / WireGuardPad * WireGuardPad
}

// Family is the IP version of the inner TCP segments an MSS is for.
type Family = Underlay

// ClampMSS is the largest MSS whose segments, once the tunnel has wrapped
// them, fit the outer MTU on the worst underlay: floor16(outer − 80) minus
// the inner family's IP and TCP headers for WireGuard (1160 for IPv4 and 1140
// for IPv6 at outer 1280). ok is false where clamping cannot help, with why.
func (s Spec) ClampMSS(outer int, inner Family) (mss int, ok bool, why string) {
	headers := inner.Header() + TCPHeader
	switch s.Kind {
	case ZeroTier:
		return 0, false, fmt.Sprintf("ZeroTier sends %d-byte UDP payloads whatever the segment size, so clamping the MSS does not help", s.zeroTierPayload())
	case Other:
		if s.OuterMTU > 0 {
			return 0, false, fmt.Sprintf("it needs an outer mtu of %d whatever its packets' size (%s)", s.OuterMTU, s.source())
		}
		return outer - s.Overhead - headers, true, ""
	}
	return Floor16(outer-WireGuardOverhead(WorstUnderlay)) - headers, true, ""
}

// ClampWhy is the formula behind ClampMSS, for plan reasons.
func (s Spec) ClampWhy(outer int, inner Family) string {
	headers := inner.Header() + TCPHeader
	if s.Kind == Other {
		return fmt.Sprintf("%d − %d overhead − %d", outer, s.Overhead, headers)
	}
	return fmt.Sprintf("floor16(%d − %d) − %d, WireGuard pads to 16 bytes", outer, WireGuardOverhead(WorstUnderlay), headers)
}

// Infer is the kind of a tunnel configured without one, from its name and
// its netlink link kind: ZeroTier for zt*, WireGuard for everything else
// (tailscale0, wg*, netbird's wt*, any link of kind wireguard), since every
// tunnel wslmtu follows by default but ZeroTier is of the WireGuard family.
// Which interfaces are tunnels at all is the config's to say.
func Infer(name, linkKind string) Spec {
	switch {
	case linkKind == "wireguard":
		return Spec{Kind: WireGuard, Source: "netlink kind wireguard"}
	case strings.HasPrefix(name, "zt"):
		return Spec{Kind: ZeroTier, Source: "a ZeroTier name"}
	}
	return Spec{Kind: WireGuard, Source: "a WireGuard-family name"}
}
