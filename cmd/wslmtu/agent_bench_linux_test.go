package main

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// BenchmarkBurst10000 resets eth0 10 000 times as fast as netlink allows and
// reports how long after the last reset eth0 is back at 1360.
func BenchmarkBurst10000(b *testing.B) {
	ns := netnstest.NewWSL(b, 1280, 1280)
	startAgentB(b, ns)
	waitMTU(b, ns, "eth0", is(1360), 2*time.Second)
	l, _ := ns.Handle.LinkByName("eth0")
	var worst time.Duration
	for i := 0; i < b.N; i++ {
		for r := 0; r < 10000; r++ {
			ns.Handle.LinkSetMTU(l, 1280+r%2) // alternate so each write is a real change
		}
		end := time.Now()
		for {
			cur, _ := ns.Handle.LinkByName("eth0")
			if cur.Attrs().MTU == 1360 {
				break
			}
			if time.Since(end) > 5*time.Second {
				b.Fatalf("eth0 still %d 5s after the burst", cur.Attrs().MTU)
			}
			time.Sleep(50 * time.Microsecond)
		}
		worst = max(worst, time.Since(end))
		time.Sleep(3 * time.Second) // let the fight end before the next round
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-converge-ms")
}

// BenchmarkIdle60s reports the agent's CPU time and context switches (wake-ups)
// over 60 s without events. Run: go test ./cmd/wslmtu -run '^$' -bench Idle60s -benchtime 1x
func BenchmarkIdle60s(b *testing.B) {
	ns := netnstest.NewWSL(b, 1280, 1280)
	a := startAgentB(b, ns)
	time.Sleep(time.Second)
	cpu0, sw0 := agentCost(b, a.cmd.Process.Pid)
	time.Sleep(60 * time.Second)
	cpu1, sw1 := agentCost(b, a.cmd.Process.Pid)
	b.ReportMetric(float64((cpu1 - cpu0).Milliseconds()), "cpu-ms/60s")
	b.ReportMetric(float64(sw1-sw0), "wakeups/60s")
}

// agentCost sums CPU time and context switches over all the agent's threads.
func agentCost(b *testing.B, pid int) (time.Duration, int) {
	var cpu time.Duration
	switches := 0
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	for _, task := range tasks {
		cpu += cpuTimeOf(b, "/proc/"+strconv.Itoa(pid)+"/task/"+task.Name()+"/stat")
		switches += ctxSwitches("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/status")
	}
	return cpu, switches
}
