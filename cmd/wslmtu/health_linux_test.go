package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// promValue is the value of the metric name (without labels) in the file.
func promValue(t *testing.T, path, name string) (float64, bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(data)))
	if err != nil || families[name] == nil || len(families[name].GetMetric()) == 0 {
		return 0, false
	}
	m := families[name].GetMetric()[0]
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue(), true
	}
	return m.GetGauge().GetValue(), true
}

// waitStatus waits for a STATUS= from the agent that starts with prefix
// and returns it.
func (a *runningAgent) waitStatus(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	want := "STATUS=" + prefix
	got := a.awaitNotify(t, want+"…", func(got string) bool { return strings.HasPrefix(got, want) }, timeout)
	return strings.TrimPrefix(got, "STATUS=")
}

// Health has one definition: the agent's metrics and its unit status text
// say what `status` says, from a fresh read. Somebody flushes the agent's
// MSS chain (netfilter sends no event for it); status says unhealthy; the
// agent's next look (here after it repairs eth0) says so too. The agent
// used to judge from its own model and the firewall worker's last run, and
// kept wslmtu_healthy 1 (and had no STATUS= at all).
func TestAgentHealthAgreesWithStatus(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	prom := filepath.Join(t.TempDir(), "wslmtu.prom")
	a := startAgent(t, ns, "mss_clamp = true\nmetrics_file = \""+prom+"\"\n")
	waitMTU(t, ns, "eth0", is(1360), 2*time.Second)
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 5s: %s; agent log:\n%s", what, a.logText())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	eventually("our MSS chain", func() bool {
		return strings.Contains(ns.Run(t, "iptables-save", "-t", "mangle"), "-A WSLMTU-IN")
	})
	if r := wslmtu(t, ns, a.dir, "status", "--assume-wsl"); r.code != 0 {
		t.Fatalf("status with the agent's plan in place: exit %d:\n%s", r.code, r.out)
	}
	eventually("wslmtu_healthy 1", func() bool { v, ok := promValue(t, prom, "wslmtu_healthy"); return ok && v == 1 })
	a.waitStatus(t, "healthy", 5*time.Second)

	ns.Run(t, "iptables", "-t", "mangle", "-F", "WSLMTU-IN")
	r := wslmtu(t, ns, a.dir, "status", "--assume-wsl")
	if r.code != exitUnhealthy || !strings.Contains(r.out, "unhealthy: the MSS rules are not in place") {
		t.Fatalf("status after the chain was flushed: exit %d:\n%s", r.code, r.out)
	}

	// A repair makes the agent publish again: WSL sends the default route
	// without its mtu (the MSS part of the plan does not change with it, so
	// the firewall worker stays away).
	repairs, _ := promValue(t, prom, "wslmtu_reconciles_total")
	ns.Run(t, "ip", "route", "replace", "default", "via", "172.28.0.1", "dev", "eth0")
	eventually("the route's mtu repaired", func() bool {
		return strings.Contains(ns.Run(t, "ip", "route", "show", "default"), "mtu 1280")
	})
	eventually("the metrics file after the repair", func() bool {
		v, ok := promValue(t, prom, "wslmtu_reconciles_total")
		return ok && v > repairs
	})
	if v, _ := promValue(t, prom, "wslmtu_healthy"); v != 0 {
		data, _ := os.ReadFile(prom)
		t.Errorf("wslmtu_healthy %v while status says unhealthy:\n%s", v, data)
	}
	if got := a.waitStatus(t, "unhealthy", 5*time.Second); !strings.HasPrefix(got, "unhealthy: the MSS rules are not in place") {
		t.Errorf("STATUS=%s", got)
	}
}
