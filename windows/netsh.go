package windows

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// Adapter is one row of `netsh interface ipv4|ipv6 show subinterfaces`.
type Adapter struct {
	Name            string `json:"name"`
	MTU             uint32 `json:"mtu"`
	MediaSenseState int    `json:"media_sense_state"` // 1 connected; 5 (or anything else) not
	BytesIn         uint64 `json:"bytes_in"`
	BytesOut        uint64 `json:"bytes_out"`
	Family          string `json:"family,omitempty"` // "ipv4" or "ipv6", set by the caller that knows
}

// Connected reports whether Windows counts the adapter as connected, the
// condition WSL uses when it picks eth0's MTU.
func (a Adapter) Connected() bool { return a.MediaSenseState == 1 }

// ParseSubinterfaces parses the output of
// `netsh interface ipv4 show subinterfaces` (or ipv6).
//
// The header is localized and its columns are right-aligned to widths that
// large values overflow (the loopback MTU 4294967295 pushes its row right),
// so rows are found by content: four numbers, then the interface name, which
// may contain spaces and parentheses ("vEthernet (WSL (Hyper-V firewall))").
// The dashed separator line tells the header from the rows.
func ParseSubinterfaces(out []byte) ([]Adapter, error) {
	text := DecodeText(out)
	var adapters []Adapter
	sawSeparator := false
	for i, raw := range lines(text) {
		line := i + 1
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" {
			continue
		}
		if isDashLine(trimmed) {
			sawSeparator = true
			continue
		}
		if !sawSeparator {
			continue // the localized header
		}
		a, err := parseSubinterfaceRow(trimmed)
		if err != nil {
			return nil, fmt.Errorf("netsh subinterfaces line %d %q: %w", line, trimmed, err)
		}
		adapters = append(adapters, a)
	}
	if !sawSeparator {
		return nil, fmt.Errorf("netsh subinterfaces output has no table (no dashed header line): %q", firstLine(text))
	}
	return adapters, nil
}

func parseSubinterfaceRow(s string) (Adapter, error) {
	var nums [4]uint64
	rest := s
	for i := range nums {
		rest = strings.TrimLeft(rest, " \t")
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			return Adapter{}, fmt.Errorf("want 4 numbers and a name, got %d fields", i+1)
		}
		n, err := strconv.ParseUint(rest[:end], 10, 64)
		if err != nil {
			return Adapter{}, fmt.Errorf("column %d %q is not a number", i+1, rest[:end])
		}
		nums[i] = n
		rest = rest[end:]
	}
	name := strings.TrimSpace(rest)
	if name == "" {
		return Adapter{}, fmt.Errorf("no interface name")
	}
	if nums[0] > 0xffffffff {
		return Adapter{}, fmt.Errorf("MTU %d out of range", nums[0])
	}
	// A small enum (1 connected, 5 not); bounded so it fits an int anywhere.
	if nums[1] > math.MaxInt32 {
		return Adapter{}, fmt.Errorf("media sense state %d out of range", nums[1])
	}
	return Adapter{Name: name, MTU: uint32(nums[0]), MediaSenseState: int(nums[1]), BytesIn: nums[2], BytesOut: nums[3]}, nil
}

func isDashLine(s string) bool {
	return strings.Trim(s, "- \t") == "" && strings.Contains(s, "--")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// IsLoopback reports the software loopback, which netsh shows with MTU
// 4294967295 and which WSL never considers.
func (a Adapter) IsLoopback() bool {
	return a.MTU == 0xffffffff || strings.HasPrefix(a.Name, "Loopback Pseudo-Interface")
}

// IsWSLAdapter reports WSL's own Hyper-V adapter ("vEthernet (WSL)", or
// "vEthernet (WSL (Hyper-V firewall))" on newer builds): it is the far end of
// eth0, not an uplink, so it does not take part in the choice.
func (a Adapter) IsWSLAdapter() bool {
	return strings.HasPrefix(a.Name, "vEthernet (WSL")
}

// OuterChoice is the answer to "which Windows adapter sets eth0's MTU".
type OuterChoice struct {
	Adapter Adapter `json:"adapter"`
	// MTU WSL pushes into eth0 in NAT mode.
	MTU uint32 `json:"mtu"`
	// Reason is one sentence for status output and logs.
	Reason string `json:"reason"`
	// Considered lists the adapters that took part, for -v output.
	Considered []Adapter `json:"considered,omitempty"`
}

// TunnelMTUFits is the largest WireGuard tunnel MTU inside WSL whose
// encapsulated packets cross this eth0 without fragmentation over an IPv4 or
// an IPv6 underlay.
func (c OuterChoice) TunnelMTUFits() int {
	mtu, _, _ := tunnel.Spec{Kind: tunnel.WireGuard}.LargestTunnelMTU(int(c.MTU))
	return mtu
}

// ChooseOuter decides which adapter WSL (NAT mode) copies into eth0: the
// smallest MTU among connected adapters of either family, leaving out the
// loopback and WSL's own vEthernet adapter. On a tie the first one listed
// wins, which puts IPv4 (passed first) ahead of IPv6.
func ChooseOuter(adapters ...[]Adapter) (OuterChoice, error) {
	var considered []Adapter
	best := -1
	for _, list := range adapters {
		for _, a := range list {
			if !a.Connected() || a.IsLoopback() || a.IsWSLAdapter() {
				continue
			}
			considered = append(considered, a)
			if best < 0 || a.MTU < considered[best].MTU {
				best = len(considered) - 1
			}
		}
	}
	if best < 0 {
		return OuterChoice{}, fmt.Errorf("no connected adapter besides loopback and vEthernet (WSL): WSL keeps eth0 at its default (1500)")
	}
	a := considered[best]
	c := OuterChoice{Adapter: a, MTU: a.MTU, Considered: considered}
	others := 0
	for i, o := range considered {
		if i != best && o.Name != a.Name {
			others++
		}
	}
	if others == 0 {
		c.Reason = fmt.Sprintf("%s (MTU %d) is the only connected adapter: WSL copies it into eth0", a.Name, a.MTU)
	} else {
		c.Reason = fmt.Sprintf("%s (MTU %d) is the smallest connected adapter: WSL copies it into eth0", a.Name, a.MTU)
	}
	return c, nil
}
