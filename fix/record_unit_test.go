package fix

import (
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
)

// The record's bounds: 68 is the smallest MTU a record may hold, a version
// above ours is a newer wslmtu's, any other is unknown.
func TestParseRecordTable(t *testing.T) {
	for _, tt := range []struct {
		json, err string
		links     string // fmt of the links when accepted
	}{
		{`{"version": 1, "original_mtu": {"eth0": 68}}`, "", "map[eth0:{68 0 }]"},
		{`{"version": 1, "original_mtu": {"eth0": 67}}`, "eth0: mtu 67 is impossible", ""},
		{`{"version": 1}`, `version 1 without "original_mtu"`, ""},
		{`{"version": 2, "links": {"eth0": {"before": 68, "wrote": 0}}}`, "", "map[eth0:{68 0 }]"},
		{`{"version": 2, "links": {"eth0": {"before": 1280, "wrote": 68}}}`, "", "map[eth0:{1280 68 }]"},
		{`{"version": 2, "links": {"eth0": {"before": 67, "wrote": 1360}}}`, "eth0: mtu 67 → 1360 is impossible", ""},
		{`{"version": 2, "links": {"eth0": {"before": 1280, "wrote": 67}}}`, "eth0: mtu 1280 → 67 is impossible", ""},
		{`{"version": 2}`, `version 2 without "links"`, ""},
		{`{"version": 2, "links": {}, "extra": 1}`, "unknown field", ""},
		{`{"version": 3, "links": {}}`, "version 3 was written by a newer wslmtu (this one reads up to 2)", ""},
		{`{"version": 0, "links": {}}`, "version 0 is unknown", ""},
		{`{"links": {}}`, "it has no version", ""},
		{`[]`, "not a JSON object", ""},
	} {
		rec, err := parseRecord([]byte(tt.json))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.json, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: err = %v, want %q", tt.json, err, tt.err)
		case tt.err == "" && fmtLinks(rec) != tt.links:
			t.Errorf("%s: links %s, want %s", tt.json, fmtLinks(rec), tt.links)
		}
	}
	rec, err := parseRecord([]byte(`{"version": 2, "boot_id": "b1", "links": {}, "policy": {"table": 5200, "rules": [], "routes": []},
		"mss": {"backend": "nft", "families": ["ipv4"], "table": "mangle", "chains": [], "jumps": []}}`))
	if err != nil || rec.BootID != "b1" || rec.Policy == nil || rec.Policy.Table != 5200 || rec.MSS == nil || rec.Version != RecordVersion {
		t.Errorf("version 2 fields: %+v, %v", rec, err)
	}
	if rec, err := parseRecord([]byte(`{"version": 1, "original_mtu": {}, "mss": {"backend": "legacy"}}`)); err != nil || rec.MSS == nil || rec.MSS.Backend != "legacy" {
		t.Errorf("version 1's mss: %+v, %v", rec.MSS, err)
	}
}

func fmtLinks(rec Record) string {
	var b strings.Builder
	b.WriteString("map[")
	for i, name := range rec.linkNames() {
		if i > 0 {
			b.WriteString(" ")
		}
		l := rec.Links[name]
		b.WriteString(name + ":{" + itoa(l.Before) + " " + itoa(l.Wrote) + " " + l.SetBy + "}")
	}
	return b.String() + "]"
}

func TestRecordEmptyAndFromOtherBoot(t *testing.T) {
	rule := detect.Rule{Family: 4, Priority: 5200, Table: 5200}
	route := detect.Route{Family: 4, Table: 5200, Dst: "default"}
	for _, tt := range []struct {
		name  string
		rec   Record
		empty bool
	}{
		{"new", newRecord(), true},
		{"an empty policy", Record{Policy: &PolicyRecord{Table: 5200}}, true},
		{"a rule and a route", Record{Policy: &PolicyRecord{Table: 5200, Rules: []detect.Rule{rule}, Routes: []detect.Route{route}}}, false},
		{"a route", Record{Policy: &PolicyRecord{Table: 5200, Routes: []detect.Route{route}}}, false},
		{"a link", Record{Links: map[string]LinkRecord{"eth0": {Before: 1280}}}, false},
		{"a route mtu", Record{Routes: []RouteRecord{{Route: route}}}, false},
		{"mss", Record{MSS: &MSSRecord{}}, false},
	} {
		if got := tt.rec.Empty(); got != tt.empty {
			t.Errorf("%s: Empty() = %v", tt.name, got)
		}
	}
	for _, tt := range []struct {
		rec, now string
		other    bool
	}{{"a", "b", true}, {"a", "a", false}, {"", "b", false}, {"a", "", false}} {
		if got := (Record{BootID: tt.rec}).FromOtherBoot(tt.now); got != tt.other {
			t.Errorf("record %q, now %q: FromOtherBoot = %v", tt.rec, tt.now, got)
		}
	}
}
