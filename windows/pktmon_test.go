package windows

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCounters(t *testing.T) {
	rows, err := ParseCounters(fixture(t, "pktmon_counters.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 8 {
		t.Fatalf("got %d rows: %+v", len(rows), rows)
	}
	want := ComponentCounter{Group: "Hyper-V Virtual Ethernet Adapter", ID: 44, Name: "Hyper-V Virtual Ether...",
		Counter: "Drop", TxPackets: 212, TxBytes: 284504}
	if rows[4] != want {
		t.Errorf("continuation drop row: got %+v\nwant %+v", rows[4], want)
	}
	if rows[0].RxBytes != 61220954 || rows[0].TxPackets != 31877 {
		t.Errorf("grouped numbers: %+v", rows[0])
	}
	drops := CounterDrops(rows)
	if !reflect.DeepEqual(drops, map[string]uint64{"Hyper-V Virtual Ethernet Adapter": 212, "Hyper-V Virtual Switc...": 3}) {
		t.Errorf("CounterDrops %v", drops)
	}
	rows, err = ParseCounters(fixture(t, "pktmon_counters_zero.txt"))
	if err != nil || len(rows) != 0 {
		t.Errorf("all zero: %v %v", rows, err)
	}
	if _, err := ParseCounters([]byte("Unknown parameter.\r\n")); err == nil {
		t.Error("garbage: want an error")
	}
}

func TestParseGroupedLocales(t *testing.T) {
	for in, want := range map[string]uint64{"1,234,567": 1234567, "1.234.567": 1234567, "1'234": 1234, "1\u00a0234": 1234, "0": 0} {
		if got, err := parseGrouped(in); err != nil || got != want {
			t.Errorf("%q: %d %v", in, got, err)
		}
	}
	if _, err := parseGrouped("Rx"); err == nil {
		t.Error("Rx parsed as a number")
	}
}

func TestParseDropLog(t *testing.T) {
	events := ParseDropLog(fixture(t, "pktmon_etl2txt.txt"))
	if len(events) != 4 {
		t.Fatalf("got %d drop events (flow events must be skipped): %+v", len(events), events)
	}
	if e := events[0]; e.Component != 44 || e.Direction != "Tx" || e.Reason != "Invalid Packet" || !e.Fragment ||
		!strings.Contains(e.Packet, "UDP, bad length 1312 > 1252") {
		t.Errorf("first drop %+v", e)
	}
	if !events[1].Fragment {
		t.Errorf("later fragment (ip-proto-17) not recognized: %+v", events[1])
	}
	if events[2].Fragment || events[2].Reason != "Filtered VLAN" {
		t.Errorf("VLAN drop %+v", events[2])
	}

	rows, _ := ParseCounters(fixture(t, "pktmon_counters.txt"))
	s := SummarizeDrops(events, ComponentNames(rows))
	if s.Total != 4 || s.FragmentDrops != 3 || !s.FragmentsDropped() {
		t.Errorf("summary %+v", s)
	}
	if !reflect.DeepEqual(s.ByReason, map[string]int{"Invalid Packet": 3, "Filtered VLAN": 1}) {
		t.Errorf("by reason %v", s.ByReason)
	}
	if !reflect.DeepEqual(s.ByComponent, map[string]int{"Hyper-V Virtual Ethernet Adapter": 3, "Hyper-V Virtual Switc...": 1}) {
		t.Errorf("by component %v", s.ByComponent)
	}
	if len(s.Examples) != 3 {
		t.Errorf("examples %q", s.Examples)
	}
	if !strings.Contains(s.Verdict(), "3 of 4 dropped packets are IP fragments") {
		t.Errorf("verdict %q", s.Verdict())
	}
	if got := SortedCounts(s.ByReason); got[0] != (Count{"Invalid Packet", 3}) {
		t.Errorf("sorted %v", got)
	}
}

func TestParseDropLogRealtime(t *testing.T) {
	events := ParseDropLog(fixture(t, "pktmon_realtime.txt"))
	if len(events) != 1 || events[0].Reason != "Invalid Packet" || !events[0].Fragment || events[0].Component != 44 {
		t.Errorf("got %+v", events)
	}
	s := SummarizeDrops(events, nil)
	if s.ByComponent["component 44"] != 1 {
		t.Errorf("unnamed component %v", s.ByComponent)
	}
}

func TestVerdictNoFragments(t *testing.T) {
	if v := (DropSummary{}).Verdict(); v != "no packets dropped during the capture" {
		t.Error(v)
	}
	if v := (DropSummary{Total: 2}).Verdict(); !strings.Contains(v, "none of them IP fragments") {
		t.Error(v)
	}
}
