package windows

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The fuzz targets below run as ordinary tests over their seeds (the real
// fixtures) and over what earlier fuzzing found (testdata/fuzz/FuzzX), and
// are fuzzed with `go test ./windows -run '^$' -fuzz FuzzX -fuzztime 2m`.
// Each states what the parser promises, not only that it does not panic.

// seedFixtures adds every fixture whose name starts with one of prefixes.
func seedFixtures(f *testing.F, prefixes ...string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	n := 0
	for _, p := range paths {
		for _, prefix := range prefixes {
			if strings.HasPrefix(filepath.Base(p), prefix) {
				data, err := os.ReadFile(p)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(data)
				n++
				break
			}
		}
	}
	if n == 0 {
		f.Fatalf("no fixture starts with %q", prefixes)
	}
}

func utf16LE(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// encodings is s as Windows tools print it: UTF-8 with and without a BOM,
// UTF-16LE with a BOM, and UTF-16LE without one where DecodeText can tell
// (at least half the code units below U+0100, as in any table of Latin
// names). Text that cannot come out of a decoder is left out: invalid UTF-8,
// NUL characters, and a leading BOM character (it is taken for the BOM).
func encodings(s string) [][]byte {
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || strings.HasPrefix(s, "\ufeff") {
		return nil
	}
	u16 := utf16LE(s)
	encs := [][]byte{[]byte(s), append([]byte{0xEF, 0xBB, 0xBF}, s...), append([]byte{0xFF, 0xFE}, u16...)}
	low := 0
	for i := 1; i < len(u16); i += 2 {
		if u16[i] == 0 {
			low++
		}
	}
	if len(u16) >= 2 && low*2 >= len(u16)/2 {
		encs = append(encs, u16)
	}
	return encs
}

// sameInEveryEncoding checks that parse gives one answer for the text of
// raw whichever way it is encoded.
func sameInEveryEncoding[T any](t *testing.T, raw []byte, parse func([]byte) (T, error)) {
	t.Helper()
	want, wantErr := parse(raw)
	for i, enc := range encodings(DecodeText(raw)) {
		got, err := parse(enc)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("encoding %d (% x…) parses differently:\ngot  %+v, %v\nwant %+v, %v", i, enc[:min(8, len(enc))], got, err, want, wantErr)
		}
	}
}

// parsedTable checks a table parser on raw: one answer in every encoding,
// no rows with an error, each row valid (check), and rows that print
// (format) and parse back the same. It returns the rows, nil on an error.
func parsedTable[T any](t *testing.T, raw []byte, parse func([]byte) ([]T, error), format func([]T) []byte, check func(T) string) []T {
	t.Helper()
	rows, err := parse(raw)
	sameInEveryEncoding(t, raw, parse)
	if err != nil {
		if rows != nil {
			t.Fatalf("error %v with rows %+v", err, rows)
		}
		return nil
	}
	for _, r := range rows {
		if bad := check(r); bad != "" {
			t.Fatalf("row %+v: %s", r, bad)
		}
	}
	again, err := parse(format(rows))
	if err != nil || !reflect.DeepEqual(again, rows) {
		t.Fatalf("round trip: %+v, %v\nwant %+v", again, err, rows)
	}
	return rows
}

func FuzzDecodeText(f *testing.F) {
	seedFixtures(f, "wsl_", "netsh_", "pktmon_")
	f.Add([]byte("plain ü"))
	f.Add([]byte{0xff, 0xfe, 0xfc, 0, 'x', 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		_ = DecodeText(raw) // any bytes: no panic
		s := string(raw)
		for i, enc := range encodings(s) {
			if got := DecodeText(enc); got != s {
				t.Fatalf("encoding %d of %q decodes to %q", i, s, got)
			}
		}
	})
}

// formatSubinterfaces prints adapters as netsh does, for the round trip.
func formatSubinterfaces(adapters []Adapter) []byte {
	var b bytes.Buffer
	b.WriteString("\r\n   MTU  MediaSenseState   Bytes In  Bytes Out  Interface\r\n------  ---------------  ---------  ---------  -------------\r\n")
	for _, a := range adapters {
		fmt.Fprintf(&b, "%6d  %15d  %9d  %9d  %s\r\n", a.MTU, a.MediaSenseState, a.BytesIn, a.BytesOut, a.Name)
	}
	return b.Bytes()
}

func FuzzParseSubinterfaces(f *testing.F) {
	seedFixtures(f, "netsh_")
	f.Fuzz(func(t *testing.T, raw []byte) {
		adapters := parsedTable(t, raw, ParseSubinterfaces, formatSubinterfaces, func(a Adapter) string {
			switch {
			case a.Name == "" || a.Name != strings.TrimSpace(a.Name) || strings.ContainsAny(a.Name, "\r\n"):
				return "name empty, padded or over lines"
			case a.MediaSenseState < 0:
				return "negative media sense state"
			}
			return ""
		})
		c, err := ChooseOuter(adapters)
		if err != nil {
			return
		}
		a := c.Adapter
		if !a.Connected || c.MTU != a.MTU || c.MTU == 0xffffffff {
			t.Fatalf("chose %+v (mtu %d)", a, c.MTU)
		}
		for _, o := range adapters {
			if o.Connected() && o.MTU < c.MTU {
				t.Fatalf("chose %s at %d over connected %s at %d", a.Name, c.MTU, o.Name, o.MTU)
			}
		}
		for _, o := range c.Considered {
			if o.MTU < c.MTU {
				t.Fatalf("chose %s at %d over %s at %d", a.Name, c.MTU, o.Name, o.MTU)
			}
		}
		if fits := c.TunnelMTUFits(); fits >= int(c.MTU) {
			t.Fatalf("a tunnel at %d fits an eth0 of %d", fits, c.MTU)
		}
	})
}

// formatDistros prints distros as `wsl.exe -l -v` does, for the round trip.
func formatDistros(distros []Distro) []byte {
	var b bytes.Buffer
	b.WriteString("  NAME      STATE           VERSION\r\n")
	for _, d := range distros {
		mark := " "
		if d.Default {
			mark = "*"
		}
		fmt.Fprintf(&b, "%s %-9s %-15s %d\r\n", mark, d.Name, d.State, d.Version)
	}
	return b.Bytes()
}

func FuzzParseDistros(f *testing.F) {
	seedFixtures(f, "wsl_list_")
	f.Fuzz(func(t *testing.T, raw []byte) {
		parsedTable(t, raw, ParseDistros, formatDistros, func(d Distro) string {
			switch {
			case d.Name == "" || strings.IndexFunc(d.Name, unicode.IsSpace) >= 0 || strings.HasPrefix(d.Name, "*"):
				return "not a distro name"
			case d.State == "" || d.State != strings.Join(strings.Fields(d.State), " "):
				return "state empty or padded"
			case d.Version < 1:
				return "not a WSL version"
			}
			return ""
		})
	})
}

func FuzzParseRunning(f *testing.F) {
	seedFixtures(f, "wsl_list_")
	f.Fuzz(func(t *testing.T, raw []byte) {
		names := ParseRunning(raw)
		sameInEveryEncoding(t, raw, func(b []byte) ([]string, error) { return ParseRunning(b), nil })
		for _, n := range names {
			if n == "" || !utf8.ValidString(n) || strings.IndexFunc(n, unicode.IsSpace) >= 0 || strings.ContainsRune(n, 0) {
				t.Fatalf("running distro name %q", n)
			}
		}
		again := ParseRunning([]byte(strings.Join(names, "\r\n")))
		if len(again) != len(names) || (len(names) > 0 && !reflect.DeepEqual(again, names)) {
			t.Fatalf("round trip: %q, want %q", again, names)
		}
	})
}

func FuzzParseCounters(f *testing.F) {
	seedFixtures(f, "pktmon_counters")
	f.Fuzz(func(t *testing.T, raw []byte) {
		rows, err := ParseCounters(raw)
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Counter == "" || r.ID < 0 || r.Name != strings.TrimSpace(r.Name) {
				t.Fatalf("row %+v", r)
			}
		}
		names := ComponentNames(rows)
		for id, name := range names {
			if id <= 0 {
				t.Fatalf("component id %d (%q)", id, name)
			}
		}
		drops := CounterDrops(rows)
		for _, r := range rows {
			if !r.IsDrop() || r.RxPackets+r.TxPackets == 0 {
				continue
			}
			name := names[r.ID]
			if name == "" {
				name = r.Name
			}
			// A sum of counters is never below one of them (no wrap-around).
			if got := drops[name]; got < r.RxPackets || got < r.TxPackets {
				t.Fatalf("%s: %d drops counted, but one row has rx %d tx %d", name, got, r.RxPackets, r.TxPackets)
			}
		}
	})
}

func FuzzParseDropLog(f *testing.F) {
	seedFixtures(f, "pktmon_etl2txt", "pktmon_realtime")
	f.Fuzz(func(t *testing.T, raw []byte) {
		events := ParseDropLog(raw)
		for _, e := range events {
			if e.Reason == "" || e.Reason != strings.TrimSpace(e.Reason) || e.Component < 0 {
				t.Fatalf("event %+v", e)
			}
			if strings.Contains(strings.ToLower(e.Reason), "frag") && !e.Fragment {
				t.Fatalf("reason %q names fragments, event not a fragment drop", e.Reason)
			}
		}
		s := SummarizeDrops(events, nil)
		sum := func(m map[string]int) (n int) {
			for _, v := range m {
				n += v
			}
			return n
		}
		if s.Total != len(events) || sum(s.ByReason) != s.Total || sum(s.ByComponent) != s.Total {
			t.Fatalf("summary of %d events: %+v", len(events), s)
		}
		if s.FragmentDrops > s.Total || len(s.Examples) > 3 || s.FragmentsDropped() != (s.FragmentDrops > 0) {
			t.Fatalf("summary %+v", s)
		}
		if v := s.Verdict(); v == "" || (s.FragmentsDropped() && !strings.Contains(v, "IP fragments")) {
			t.Fatalf("verdict %q for %+v", v, s)
		}
		if got := SortedCounts(s.ByReason); len(got) != len(s.ByReason) {
			t.Fatalf("sorted counts %v of %v", got, s.ByReason)
		}
	})
}

// What fuzzing found, spelled out (the inputs themselves are replayed from
// testdata/fuzz): each was accepted before and is refused or read right now.
func TestFuzzFindings(t *testing.T) {
	// A lone CR inside a row became part of the adapter's name.
	if got, err := ParseSubinterfaces([]byte("h\r\n------\r\n1500 1 0 0 Ethernet\rX\r\n")); err == nil {
		t.Errorf("lone CR in a row: %+v, want an error for the line after it", got)
	}
	// A media sense state beyond int64 wrapped to a negative number.
	if got, err := ParseSubinterfaces([]byte("h\r\n------\r\n1500 18446744073709551615 0 0 Ethernet\r\n")); err == nil {
		t.Errorf("huge media sense state: %+v", got)
	}
	// Version 0 (from UTF-16 misread, or anything else) is no WSL version.
	if got, err := ParseDistros([]byte("NAME STATE VERSION\r\n* Ubuntu Running 0\r\n")); err == nil {
		t.Errorf("version 0: %+v", got)
	}
	// "** 0 Running 1" made a distro called "*".
	if got, err := ParseDistros([]byte("NAME STATE VERSION\r\n** Running 1\r\n")); err == nil {
		t.Errorf("second star: %+v", got)
	}
	// A NUL (a UTF-16 line misread) made a running distro name, and so did
	// a second byte-order mark.
	if got := ParseRunning([]byte("\x0000")); len(got) != 0 {
		t.Errorf("NUL in a name: %q", got)
	}
	if got := ParseRunning([]byte("\xff\xfe\xff\xfe")); len(got) != 0 {
		t.Errorf("BOM as a name: %q", got)
	}
	// Bytes that are not UTF-8 made one too.
	if got := ParseRunning([]byte(" \xff\xfe")); len(got) != 0 {
		t.Errorf("not UTF-8 as a name: %q", got)
	}
	// "-1" before a component name was taken for its id.
	rows, err := ParseCounters([]byte("Adapter\r\n -1 Name  Upper Rx 1 2 | Tx 3 4\r\n"))
	if err != nil || len(rows) != 1 || rows[0].ID != 0 || rows[0].Name != "-1 Name" {
		t.Errorf("negative id: %+v, %v", rows, err)
	}
	// "Reason  ," named no reason and made a drop with an empty one.
	if got := ParseDropLog([]byte("Drop: Component 4, Reason  ,\n")); len(got) != 0 {
		t.Errorf("empty reason: %+v", got)
	}
}
