package windows

import (
	"fmt"
	"math"
	"strconv"
	"strings"
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

// Connected reports whether netsh shows the adapter as connected.
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
// 4294967295.
func (a Adapter) IsLoopback() bool {
	return a.MTU == 0xffffffff || strings.HasPrefix(a.Name, "Loopback Pseudo-Interface")
}

// IPInterface is the row as the IP interface table has it. netsh's media
// sense state stands in for the table's Connected flag.
func (a Adapter) IPInterface() IPInterface {
	return IPInterface{Name: a.Name, Family: a.Family, MTU: a.MTU, Connected: a.Connected(), Loopback: a.IsLoopback()}
}

// ChooseOuter applies WSL's rule (MinimumConnected) to netsh's lists, for
// the Linux side, which can reach Windows only through netsh.exe over WSL
// interop. Give each list's Family first.
func ChooseOuter(lists ...[]Adapter) (OuterChoice, error) {
	var rows []IPInterface
	for _, l := range lists {
		for _, a := range l {
			rows = append(rows, a.IPInterface())
		}
	}
	return MinimumConnected(rows)
}
