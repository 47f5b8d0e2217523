package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// BenchmarkAgentRoutes is the agent process (`wslmtu run` in a namespace)
// while 10k or 100k routes are added to ten other tables in one burst
// (`ip -batch`): s-converge is the time from the end of the burst until a
// reset of eth0 made then is repaired, i.e. the agent has caught up
// (through the queued events, or an overflow and a full read); µs-cpu/route
// its CPU time for the burst per route; MB-rss and MB-peak its resident
// memory after the burst and at its highest.
// Run: go test ./cmd/wslmtu -run '^$' -bench AgentRoutes -benchtime 1x
func BenchmarkAgentRoutes(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("others=%dk", n/1000), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				measureRouteBurst(b, n)
			}
		})
	}
}

func measureRouteBurst(b *testing.B, n int) {
	ns := netnstest.NewWSL(b, 1280, 1280)
	a := startAgentB(b, ns)
	waitMTU(b, ns, "eth0", is(1360), 2*time.Second)
	batch := filepath.Join(b.TempDir(), "routes")
	f, err := os.Create(batch)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "route add 10.%d.%d.0/24 via 172.28.0.1 dev eth0 table %d metric %d\n", i>>8&255, i&255, 100+i%10, i>>16)
	}
	w.Flush()
	f.Close()
	pid := a.cmd.Process.Pid
	cpu := cpuTime(b, pid)
	if out, err := exec.Command("ip", "-n", ns.Name, "-batch", batch).CombinedOutput(); err != nil {
		b.Fatalf("ip -batch: %v\n%s", err, out)
	}
	end := time.Now()
	setMTU(b, ns, "eth0", 1280)
	waitMTU(b, ns, "eth0", is(1360), 30*time.Second)
	converged := time.Since(end)
	cpu = cpuTime(b, pid) - cpu
	b.ReportMetric(converged.Seconds(), "s-converge")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "µs-cpu/route")
	b.ReportMetric(statusKB(b, pid, "VmRSS")/1024, "MB-rss")
	b.ReportMetric(statusKB(b, pid, "VmHWM")/1024, "MB-peak")
}

// statusKB reads a "Vm…:  N kB" line of /proc/PID/status.
func statusKB(t testing.TB, pid int, field string) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
