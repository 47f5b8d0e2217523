package windows

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ComponentCounter is one row of `pktmon counters`: one counter (Upper,
// Lower, Drop…) of one networking component, both directions.
type ComponentCounter struct {
	Group     string `json:"group"` // adapter heading the component sits under
	ID        int    `json:"id"`
	Name      string `json:"name"` // as printed, pktmon truncates long names with "..."
	Counter   string `json:"counter"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
}

// IsDrop reports a drop counter row.
func (c ComponentCounter) IsDrop() bool { return strings.EqualFold(c.Counter, "Drop") }

// ParseCounters parses the text table `pktmon counters` (and `pktmon stop`
// on old builds) prints:
//
//	Hyper-V Virtual Ethernet Adapter
//	 Id Name                     Counter  Direction  Packets    Bytes | Direction  Packets    Bytes
//	 -- ----                     -------  ---------  -------    ----- | ---------  -------    -----
//	 44 Hyper-V Virtual Ethe...  Upper    Rx           1,204  105,337 | Tx           1,877  2,342,660
//	                             Drop     Rx               0        0 | Tx             212    284,504
//
// Rows are read from the right (the name may contain spaces); a row with no
// id and name continues the component above it. Numbers carry locale digit
// grouping (1,204 / 1.204 / 1 204), which is stripped.
func ParseCounters(out []byte) ([]ComponentCounter, error) {
	text := DecodeText(out)
	var rows []ComponentCounter
	group := ""
	lastID, lastName := 0, ""
	for _, raw := range lines(text) {
		s := strings.TrimSpace(raw)
		if s == "" || isDashLine(strings.ReplaceAll(s, "|", "")) {
			continue
		}
		left, right, ok := strings.Cut(s, "|")
		if !ok {
			if raw == s { // not indented: an adapter heading
				group = s
			}
			continue
		}
		row, id, name, err := parseCounterRow(left, right)
		if err != nil {
			continue // the localized column header line
		}
		if name == "" {
			id, name = lastID, lastName
		}
		row.Group, row.ID, row.Name = group, id, name
		lastID, lastName = id, name
		rows = append(rows, row)
	}
	if len(rows) == 0 && !strings.Contains(strings.ToLower(text), "zero") {
		return nil, fmt.Errorf("pktmon counters printed no counter table: %q", firstLine(text))
	}
	return rows, nil
}

func parseCounterRow(left, right string) (ComponentCounter, int, string, error) {
	lf := strings.Fields(left)
	rf := strings.Fields(right)
	if len(lf) < 4 || len(rf) < 3 {
		return ComponentCounter{}, 0, "", fmt.Errorf("short row")
	}
	lp, err1 := parseGrouped(lf[len(lf)-2])
	lb, err2 := parseGrouped(lf[len(lf)-1])
	rp, err3 := parseGrouped(rf[len(rf)-2])
	rb, err4 := parseGrouped(rf[len(rf)-1])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return ComponentCounter{}, 0, "", fmt.Errorf("not a counter row")
	}
	c := ComponentCounter{Counter: lf[len(lf)-4]}
	assign := func(dir string, p, b uint64) {
		if strings.EqualFold(dir, "Tx") {
			c.TxPackets, c.TxBytes = p, b
		} else {
			c.RxPackets, c.RxBytes = p, b
		}
	}
	assign(lf[len(lf)-3], lp, lb)
	assign(rf[len(rf)-3], rp, rb)
	prefix := lf[:len(lf)-4]
	id := 0
	if len(prefix) > 0 {
		// Component ids are positive; "-1" or "+5" is part of a name.
		if n, err := strconv.ParseUint(prefix[0], 10, 31); err == nil {
			id = int(n)
			prefix = prefix[1:]
		}
	}
	return c, id, strings.Join(prefix, " "), nil
}

func parseGrouped(s string) (uint64, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ',' || r == '.' || r == '\'' || r == '\u00a0' || r == '\u202f':
		default:
			return 0, fmt.Errorf("%q is not a number", s)
		}
	}
	if b.Len() == 0 {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.ParseUint(b.String(), 10, 64)
}

// DropEvent is one dropped packet from `pktmon etl2txt` / `pktmon format`
// output (or real-time `pktmon start -m real-time` output).
type DropEvent struct {
	Component int    `json:"component"`
	Direction string `json:"direction,omitempty"`
	Reason    string `json:"reason"`
	Packet    string `json:"packet,omitempty"` // the decoded line below the event, if any
	Fragment  bool   `json:"fragment"`
}

// DropSummary counts drops per reason and per component and says whether
// IP fragments are among them — the signature of microsoft/WSL#6082.
type DropSummary struct {
	Total         int            `json:"total"`
	ByReason      map[string]int `json:"by_reason"`
	ByComponent   map[string]int `json:"by_component"`
	FragmentDrops int            `json:"fragment_drops"`
	Examples      []string       `json:"examples,omitempty"` // up to 3 decoded fragment drops
}

// A reason starts with a non-space: "Reason  ," names none.
var (
	reComponent  = regexp.MustCompile(`\bComponent:?\s+(\d+)`)
	reDirection  = regexp.MustCompile(`\bDirection:?\s+(\w+)`)
	reDropReason = regexp.MustCompile(`\b(?:DropReason|Drop reason|Reason):?\s+([^,\s][^,]*?)\s*(?:,|$)`)
	reDropStart  = regexp.MustCompile(`(?:^|\]\s*)Drop:`)
)

// ParseDropLog extracts the drop events from pktmon's text log. A drop event
// carries "DropReason <reason> ," (etl2txt) or starts with "Drop:" and has
// "Reason: <reason>" (real-time); the tab-indented line after it is the packet
// decoded tcpdump-style. Flow events (no drop) are skipped.
func ParseDropLog(out []byte) []DropEvent {
	text := DecodeText(out)
	var events []DropEvent
	var cur *DropEvent
	for _, raw := range lines(text) {
		s := strings.TrimSpace(raw)
		if s == "" {
			continue
		}
		indented := raw != strings.TrimLeft(raw, " \t")
		if indented && cur != nil && cur.Packet == "" {
			cur.Packet = s
			cur.Fragment = cur.Fragment || isFragmentPacket(s)
			continue
		}
		cur = nil
		m := reDropReason.FindStringSubmatch(s)
		if m == nil || (!strings.Contains(s, "DropReason") && !reDropStart.MatchString(s)) {
			continue
		}
		ev := DropEvent{Reason: strings.TrimSpace(m[1])}
		if c := reComponent.FindStringSubmatch(s); c != nil {
			ev.Component, _ = strconv.Atoi(c[1])
		}
		if d := reDirection.FindStringSubmatch(s); d != nil {
			ev.Direction = d[1]
		}
		ev.Fragment = strings.Contains(strings.ToLower(ev.Reason), "frag")
		events = append(events, ev)
		cur = &events[len(events)-1]
	}
	return events
}

// isFragmentPacket recognizes a fragment in pktmon's tcpdump-style decode.
// The first fragment of a UDP datagram still has the UDP header, whose length
// covers the whole datagram, so the decoder says "UDP, bad length 1320 > 1252";
// later IPv4 fragments have no UDP header and decode as "ip-proto-17"; IPv6
// fragments show their fragment header as "frag (…)".
func isFragmentPacket(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "bad length") || strings.Contains(l, "ip-proto-17") || strings.Contains(l, "frag")
}

// SummarizeDrops folds drop events into counts. names maps component ids to
// names (from ParseCounters); unknown ids print as "component N".
func SummarizeDrops(events []DropEvent, names map[int]string) DropSummary {
	s := DropSummary{ByReason: map[string]int{}, ByComponent: map[string]int{}}
	for _, e := range events {
		s.Total++
		s.ByReason[e.Reason]++
		name := names[e.Component]
		if name == "" {
			name = fmt.Sprintf("component %d", e.Component)
		}
		s.ByComponent[name]++
		if e.Fragment {
			s.FragmentDrops++
			if len(s.Examples) < 3 && e.Packet != "" {
				s.Examples = append(s.Examples, e.Packet)
			}
		}
	}
	return s
}

// ComponentNames maps component ids to their names, preferring the adapter
// heading when pktmon truncated the row name.
func ComponentNames(rows []ComponentCounter) map[int]string {
	m := map[int]string{}
	for _, r := range rows {
		if r.ID == 0 {
			continue
		}
		name := r.Name
		if strings.HasSuffix(name, "...") && strings.HasPrefix(r.Group, strings.TrimSuffix(name, "...")) {
			name = r.Group
		}
		m[r.ID] = name
	}
	return m
}

// CounterDrops sums the Drop counter rows per component name.
func CounterDrops(rows []ComponentCounter) map[string]uint64 {
	m := map[string]uint64{}
	names := ComponentNames(rows)
	for _, r := range rows {
		if !r.IsDrop() {
			continue
		}
		if n := r.RxPackets + r.TxPackets; n > 0 {
			name := names[r.ID]
			if name == "" {
				name = r.Name
			}
			m[name] += n
		}
	}
	return m
}

// FragmentsDropped reports whether the capture shows dropped fragments.
func (s DropSummary) FragmentsDropped() bool { return s.FragmentDrops > 0 }

// Verdict is the one-line answer for `wslmtu drops`.
func (s DropSummary) Verdict() string {
	switch {
	case s.FragmentsDropped():
		return fmt.Sprintf("%d of %d dropped packets are IP fragments: Hyper-V/WinNAT is dropping fragmented tunnel packets (microsoft/WSL#6082); raise eth0's MTU in WSL (`wslmtu fix`) so the tunnel stops fragmenting", s.FragmentDrops, s.Total)
	case s.Total > 0:
		return fmt.Sprintf("%d packets dropped, none of them IP fragments: the drops are not the WSL fragmentation problem", s.Total)
	default:
		return "no packets dropped during the capture"
	}
}

// Count is one entry of a per-reason or per-component tally.
type Count struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// SortedCounts returns a tally largest first (ties by name), for stable output.
func SortedCounts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out
}
