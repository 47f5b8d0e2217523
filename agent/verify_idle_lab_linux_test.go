package agent

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/testenv/labtest"
)

// TestMeasureIdleWithVerify is a measurement, not a check: with
// WSLMTU_MEASURE_IDLE=90s it runs the agent in the lab with two verify
// hosts at the shortest verify_interval (10s) for that long and logs the
// process's CPU time, extrapolated per hour, and the rounds made. The lab's
// tunnel nodes are processes of their own, so the CPU is the agent's (and
// the test's idle runtime).
func TestMeasureIdleWithVerify(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("WSLMTU_MEASURE_IDLE"))
	if err != nil {
		t.Skip("a measurement: set WSLMTU_MEASURE_IDLE=90s to run it")
	}
	l := labtest.New(t, lab.Options{CorporateVPN: true})
	hosts := []string{l.PeerTunnelIP(false).String(), l.CorporateServerIP(false).String()}
	cfg := verifyConfig(config.ScopeTunnel, hosts...)
	cfg.VerifyInterval = "10s"
	a := startAgent(t, l, cfg)
	first := waitPaths(t, a, hosts, fix.PathCheck.OK)[0].Checked
	before := cpu(t)
	time.Sleep(d)
	used := cpu(t) - before
	last := waitPaths(t, a, hosts, fix.PathCheck.OK)[0].Checked
	t.Logf("idle %s with verify = %d hosts every 10s (±10%%): CPU %s = %s per hour; last check %s after the first",
		d, len(hosts), used, time.Duration(float64(used)*float64(time.Hour)/float64(d)).Round(time.Millisecond),
		last.Sub(first).Round(time.Millisecond))
}

func cpu(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
