package metrics

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var started = time.Date(2026, 11, 30, 5, 48, 26, 0, time.UTC)

func sample() Snapshot {
	return Snapshot{
		Version:           "1.2.3",
		AgentRunning:      true,
		AgentStarted:      started,
		Reconciles:        42,
		Repairs:           map[string]int{"eth0": 7, "route default": 1},
		Fights:            2,
		Resubscribes:      1,
		LastRepair:        started.Add(90 * time.Second),
		LastRepairLatency: 1152 * time.Microsecond,
		Outer:             &Link{Name: "eth0", MTU: 1360},
		Tunnels:           []Link{{Name: "tailscale0", MTU: 1280}, {Name: "wg0", MTU: 1420}},
		Healthy:           true,
		Paths: []Path{{Host: "100.64.0.2", OK: true, Largest: 1280, Checked: started.Add(time.Minute)},
			{Host: "10.8.0.2", OK: false, Largest: 1280, Checked: started.Add(2 * time.Minute)}},
	}
}

// parse reads the text format the way Prometheus does, with the strict
// (pre-UTF-8) name rules node_exporter's textfile collector applies.
func parse(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("not the Prometheus text format: %v\n%s", err, text)
	}
	return families
}

// value is the value of the one metric of family name with the given
// labels (name=value pairs), as a string for comparison.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, labels ...string) (float64, dto.MetricType) {
	t.Helper()
	f := families[name]
	if f == nil {
		t.Fatalf("no %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		if len(have) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), f.GetType()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), f.GetType()
		}
		t.Fatalf("%s: unexpected type %s", name, f.GetType())
	}
	t.Fatalf("no %s%v", name, labels)
	return 0, 0
}

func TestTextCarriesTheSnapshot(t *testing.T) {
	text, err := Text(sample())
	if err != nil {
		t.Fatal(err)
	}
	families := parse(t, text)
	tests := []struct {
		name   string
		labels []string
		want   float64
		typ    dto.MetricType
	}{
		{"wslmtu_build_info", []string{"version", "1.2.3"}, 1, dto.MetricType_GAUGE},
		{"wslmtu_agent_running", nil, 1, dto.MetricType_GAUGE},
		{"wslmtu_agent_start_time_seconds", nil, float64(started.Unix()), dto.MetricType_GAUGE},
		{"wslmtu_reconciles_total", nil, 42, dto.MetricType_COUNTER},
		{"wslmtu_repairs_total", []string{"interface", "eth0"}, 7, dto.MetricType_COUNTER},
		{"wslmtu_repairs_total", []string{"interface", "route default"}, 1, dto.MetricType_COUNTER},
		// Known interfaces without repairs start at 0, so rate() sees them.
		{"wslmtu_repairs_total", []string{"interface", "tailscale0"}, 0, dto.MetricType_COUNTER},
		{"wslmtu_repairs_total", []string{"interface", "wg0"}, 0, dto.MetricType_COUNTER},
		{"wslmtu_fights_total", nil, 2, dto.MetricType_COUNTER},
		{"wslmtu_netlink_resubscribes_total", nil, 1, dto.MetricType_COUNTER},
		{"wslmtu_last_repair_timestamp_seconds", nil, float64(started.Unix() + 90), dto.MetricType_GAUGE},
		{"wslmtu_last_repair_latency_seconds", nil, 0.001152, dto.MetricType_GAUGE},
		{"wslmtu_outer_mtu_bytes", []string{"interface", "eth0"}, 1360, dto.MetricType_GAUGE},
		{"wslmtu_tunnel_mtu_bytes", []string{"interface", "tailscale0"}, 1280, dto.MetricType_GAUGE},
		{"wslmtu_tunnel_mtu_bytes", []string{"interface", "wg0"}, 1420, dto.MetricType_GAUGE},
		{"wslmtu_healthy", nil, 1, dto.MetricType_GAUGE},
		{"wslmtu_path_ok", []string{"host", "100.64.0.2"}, 1, dto.MetricType_GAUGE},
		{"wslmtu_path_ok", []string{"host", "10.8.0.2"}, 0, dto.MetricType_GAUGE},
		{"wslmtu_path_largest_bytes", []string{"host", "10.8.0.2"}, 1280, dto.MetricType_GAUGE},
		{"wslmtu_path_checked_timestamp_seconds", []string{"host", "100.64.0.2"}, float64(started.Unix() + 60), dto.MetricType_GAUGE},
	}
	for _, tt := range tests {
		got, typ := value(t, families, tt.name, tt.labels...)
		if got != tt.want || typ != tt.typ {
			t.Errorf("%s%v = %v (%s), want %v (%s)", tt.name, tt.labels, got, typ, tt.want, tt.typ)
		}
	}
	for name, f := range families {
		if f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}
	if len(families) != 15 {
		t.Errorf("%d metric families, want 15:\n%s", len(families), text)
	}
}

// Before any repair, with no agent and no outer interface, nothing is
// invented: no last-repair time, no start time, no MTU series.
func TestTextLeavesOutWhatIsUnknown(t *testing.T) {
	text, err := Text(Snapshot{Version: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	families := parse(t, text)
	for _, name := range []string{"wslmtu_last_repair_timestamp_seconds", "wslmtu_last_repair_latency_seconds",
		"wslmtu_agent_start_time_seconds", "wslmtu_outer_mtu_bytes", "wslmtu_tunnel_mtu_bytes", "wslmtu_repairs_total",
		"wslmtu_path_ok", "wslmtu_path_largest_bytes", "wslmtu_path_checked_timestamp_seconds"} {
		if families[name] != nil {
			t.Errorf("%s present without a value to show", name)
		}
	}
	if v, _ := value(t, families, "wslmtu_healthy"); v != 0 {
		t.Errorf("wslmtu_healthy = %v, want 0", v)
	}
	if v, _ := value(t, families, "wslmtu_agent_running"); v != 0 {
		t.Errorf("wslmtu_agent_running = %v, want 0", v)
	}
}

// The same snapshot gives the same bytes (map order must not leak), so
// Write can tell "unchanged" by comparing.
func TestTextIsStable(t *testing.T) {
	first, _ := Text(sample())
	for i := 0; i < 20; i++ {
		again, _ := Text(sample())
		if !bytes.Equal(first, again) {
			t.Fatalf("run %d differs:\n%s\n---\n%s", i, first, again)
		}
	}
}

func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func TestWriteOnlyWhenChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wslmtu.prom")
	s := sample()

	wrote, err := Write(path, s)
	if err != nil || !wrote {
		t.Fatalf("first write: wrote %v, err %v", wrote, err)
	}
	data, _ := os.ReadFile(path)
	want, _ := Text(s)
	if !bytes.Equal(data, want) {
		t.Errorf("file differs from Text:\n%s", data)
	}
	parse(t, data)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 (node_exporter runs as another user)", fi.Mode().Perm())
	}
	first := stat(t, path)

	// Some file systems keep mtimes to the second: a rewrite must be seen.
	time.Sleep(20 * time.Millisecond)
	for i := 0; i < 3; i++ {
		s := sample()
		s.Repairs = map[string]int{"route default": 1, "eth0": 7} // same content, new map
		wrote, err := Write(path, s)
		if err != nil || wrote {
			t.Fatalf("unchanged write %d: wrote %v, err %v", i, wrote, err)
		}
	}
	if now := stat(t, path); !os.SameFile(first, now) || !now.ModTime().Equal(first.ModTime()) {
		t.Errorf("an unchanged snapshot touched the file: same inode %v, mtime %v → %v", os.SameFile(first, now), first.ModTime(), now.ModTime())
	}

	s.Repairs["eth0"]++
	if wrote, err := Write(path, s); err != nil || !wrote {
		t.Fatalf("changed write: wrote %v, err %v", wrote, err)
	}
	if os.SameFile(first, stat(t, path)) {
		t.Error("a change was written in place, not through a new file renamed over the old one")
	}
	data, _ = os.ReadFile(path)
	if v, _ := value(t, parse(t, data), "wslmtu_repairs_total", "interface", "eth0"); v != 8 {
		t.Errorf("repairs after the change = %v, want 8", v)
	}

	// Somebody else's edit is replaced.
	os.WriteFile(path, []byte("garbage\n"), 0o644)
	if wrote, err := Write(path, s); err != nil || !wrote {
		t.Fatalf("write over an edited file: wrote %v, err %v", wrote, err)
	}

	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("temporary files left behind: %v", names)
	}
}

func TestWriteRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, sample()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("writing over a directory: %v", err)
	}
	if _, err := Write(filepath.Join(dir, "missing", "wslmtu.prom"), sample()); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}
