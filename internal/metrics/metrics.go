package metrics

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/wslmtu/wslmtu/internal/statefile"
)

// Snapshot is everything the metrics show, at one moment.
type Snapshot struct {
	// Version is the running wslmtu's, for wslmtu_build_info.
	Version string

	// AgentRunning: for status --prom, whether an agent runs; the agent
	// itself always sets it.
	AgentRunning bool
	// AgentStarted is when the agent started; zero: unknown.
	AgentStarted time.Time
	Reconciles   int
	// Repairs counts repairs by interface (or "route …"/"rule …" for the
	// parts of outer_scope = "tunnel").
	Repairs      map[string]int
	Fights       int
	Resubscribes int
	// LastRepair is when the last repair was written; zero: none yet.
	LastRepair        time.Time
	LastRepairLatency time.Duration

	// Outer is the outer interface; nil when there is none.
	Outer *Link
	// Tunnels are the tunnels that are up.
	Tunnels []Link
	// Healthy: nothing needs to change (or the host is not managed).
	Healthy bool
	// Paths are the last path checks of the verify hosts.
	Paths []Path
}

// Path is the last check of one verify host.
type Path struct {
	Host string
	OK   bool
	// Largest is the largest IP packet that crossed; -1: none.
	Largest int
	Checked time.Time
}

// Link is an interface and its current MTU.
type Link struct {
	Name string
	MTU  int
}

var (
	buildInfo = prometheus.NewDesc("wslmtu_build_info",
		"wslmtu's version, as a label; the value is always 1.", []string{"version"}, nil)
	agentRunning = prometheus.NewDesc("wslmtu_agent_running",
		"1 while the agent runs.", nil, nil)
	agentStart = prometheus.NewDesc("wslmtu_agent_start_time_seconds",
		"When the agent started, in seconds since the Unix epoch.", nil, nil)
	reconciles = prometheus.NewDesc("wslmtu_reconciles_total",
		"Times the agent compared the host with the plan.", nil, nil)
	repairs = prometheus.NewDesc("wslmtu_repairs_total",
		"Writes that undid somebody else's change, by interface.", []string{"interface"}, nil)
	fights = prometheus.NewDesc("wslmtu_fights_total",
		"Times something kept undoing a repair and the agent limited its rate.", nil, nil)
	resubscribes = prometheus.NewDesc("wslmtu_netlink_resubscribes_total",
		"Times the netlink subscription closed and the agent subscribed again.", nil, nil)
	lastRepair = prometheus.NewDesc("wslmtu_last_repair_timestamp_seconds",
		"When the last repair was written, in seconds since the Unix epoch.", nil, nil)
	lastLatency = prometheus.NewDesc("wslmtu_last_repair_latency_seconds",
		"Time from the event to the last repair's write.", nil, nil)
	outerMTU = prometheus.NewDesc("wslmtu_outer_mtu_bytes",
		"MTU of the outer interface (eth0 under WSL's NAT).", []string{"interface"}, nil)
	tunnelMTU = prometheus.NewDesc("wslmtu_tunnel_mtu_bytes",
		"MTU of each tunnel that is up.", []string{"interface"}, nil)
	pathOK = prometheus.NewDesc("wslmtu_path_ok",
		"1 when the path to the host carried the size it must under the plan in force, else 0.", []string{"host"}, nil)
	pathLargest = prometheus.NewDesc("wslmtu_path_largest_bytes",
		"The largest IP packet that crossed to the host with DF at the last check (the needed size when it passed).", []string{"host"}, nil)
	pathChecked = prometheus.NewDesc("wslmtu_path_checked_timestamp_seconds",
		"When the path to the host was last checked, in seconds since the Unix epoch.", []string{"host"}, nil)
	healthy = prometheus.NewDesc("wslmtu_healthy",
		"1 when what the config asks is in force, as wslmtu status says (or the host is not managed), else 0.", nil, nil)
)

// collector hands a snapshot to the registry as constant metrics: the
// values are counted elsewhere (the agent's counters), not here.
type collector struct{ s Snapshot }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{buildInfo, agentRunning, agentStart, reconciles, repairs, fights,
		resubscribes, lastRepair, lastLatency, outerMTU, tunnelMTU, healthy, pathOK, pathLargest, pathChecked} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(buildInfo, 1, s.Version)
	gauge(agentRunning, boolValue(s.AgentRunning))
	if !s.AgentStarted.IsZero() {
		gauge(agentStart, unixSeconds(s.AgentStarted))
	}
	counter(reconciles, s.Reconciles)
	counter(fights, s.Fights)
	counter(resubscribes, s.Resubscribes)
	for name, n := range s.repairsByInterface() {
		counter(repairs, n, name)
	}
	if !s.LastRepair.IsZero() {
		gauge(lastRepair, unixSeconds(s.LastRepair))
		gauge(lastLatency, s.LastRepairLatency.Seconds())
	}
	if s.Outer != nil {
		gauge(outerMTU, float64(s.Outer.MTU), s.Outer.Name)
	}
	for _, t := range s.Tunnels {
		gauge(tunnelMTU, float64(t.MTU), t.Name)
	}
	gauge(healthy, boolValue(s.Healthy))
	for _, p := range s.Paths {
		gauge(pathOK, boolValue(p.OK), p.Host)
		if p.Largest >= 0 {
			gauge(pathLargest, float64(p.Largest), p.Host)
		}
		gauge(pathChecked, unixSeconds(p.Checked), p.Host)
	}
}

// repairsByInterface is Repairs with a zero for the outer interface and each
// tunnel that has none yet, so rate() and increase() see the series from
// its first scrape on.
func (s Snapshot) repairsByInterface() map[string]int {
	out := map[string]int{}
	if s.Outer != nil {
		out[s.Outer.Name] = 0
	}
	for _, t := range s.Tunnels {
		out[t.Name] = 0
	}
	for name, n := range s.Repairs {
		out[name] = n
	}
	return out
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Registry is a registry holding the snapshot's metrics.
func Registry(s Snapshot) (*prometheus.Registry, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(collector{s}); err != nil {
		return nil, err
	}
	return reg, nil
}

// Text renders the snapshot in the Prometheus text format, exactly as Write
// puts it in the file.
func Text(s Snapshot) ([]byte, error) {
	reg, err := Registry(s)
	if err != nil {
		return nil, err
	}
	return render(reg)
}

func render(g prometheus.Gatherer) ([]byte, error) {
	families, err := g.Gather()
	if err != nil {
		return nil, err
	}
	// Gather sorts families by name and metrics by labels: the same
	// snapshot gives the same bytes.
	sort.SliceStable(families, func(i, j int) bool { return families[i].GetName() < families[j].GetName() })
	var b bytes.Buffer
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// Write puts the snapshot's metrics into the file at path, for
// node_exporter's textfile collector, when they differ from what the file
// holds; it reports whether it wrote. client_golang gives the text (the
// registry, then expfmt); the file is statefile's: replaced atomically, so
// the collector never reads half of it, through descriptors, so nobody can
// make root follow a link of theirs (client_golang's WriteToTextfile chmods
// its temporary file by name), and refused in a directory others can write
// without the sticky bit. An unchanged snapshot leaves the file alone (same
// inode, same mtime). A path that holds something else than a regular file
// (a directory, a FIFO) is an error, not replaced.
func Write(path string, s Snapshot) (bool, error) {
	text, err := Text(s)
	if err != nil {
		return false, err
	}
	wrote, err := statefile.ReplaceFileIfChanged(path, text, 0o644, false)
	if err != nil {
		return false, fmt.Errorf("metrics_file: %w", err)
	}
	return wrote, nil
}
