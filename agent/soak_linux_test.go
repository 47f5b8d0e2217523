package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// TestSoak runs the agent for a long time under one eth0 reset every 10 ms,
// a tailscale0 recreation every second and a config rewrite every two, and
// checks that every reset was repaired before the next one and that
// goroutines, open files and memory stay flat. On demand only:
//
//	sudo WSLMTU_SOAK=10m go test ./agent -run TestSoak -v -timeout 15m
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("WSLMTU_SOAK"))
	if err != nil {
		t.Skip("on demand: WSLMTU_SOAK=10m go test ./agent -run TestSoak -v -timeout 15m")
	}
	ns := netnstest.NewWSL(t, 1280, 1280)
	nsn := netnstest.NetNS(t, ns)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "wslmtu.toml")
	configs := []string{"# soak A\nmtu_strategy = \"auto\"\n", "# soak B\nmtu_strategy = \"auto\"\nmax_outer_mtu = 1500\n"}
	os.WriteFile(cfgPath, []byte(configs[0]), 0o644)
	cfg, _ := config.Load(cfgPath)
	cfg.AssumeWSL = true
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		if err := nsn.Enter(); err != nil {
			done <- err
			return
		}
		done <- Run(ctx, Options{Config: cfg, ConfigPath: cfgPath,
			Overlay: func(c config.Config) (config.Config, error) { c.AssumeWSL = true; return c, c.Validate() },
			Host:    fix.HostAt(ns.Handle, detect.HostSources(), filepath.Join(dir, "state")), Netns: nsn,
			Logger: soakLogger(t), Notify: func(string) {}, Ready: ready})
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-ready

	reset := func() bool {
		l, err := ns.Handle.LinkByName("eth0")
		if err != nil {
			return false
		}
		return ns.Handle.LinkSetMTU(l, 1280) == nil
	}
	warm := time.Now().Add(5 * time.Second)
	var base usage
	resets, missed := 0, 0
	end := time.Now().Add(d)
	next := time.Now()
	for i := 0; time.Now().Before(end); i++ {
		if base.goroutines == 0 && time.Now().After(warm) {
			base = measure()
			t.Logf("after warm-up: %s", base)
		}
		switch {
		case i%100 == 50:
			ns.Run(t, "ip", "link", "del", "tailscale0")
			ns.AddTunnel(t, 1280)
		case i%200 == 150:
			os.WriteFile(cfgPath, []byte(configs[(i/200)%2]), 0o644)
		}
		// Repaired before the next reset?
		if i > 0 && ns.MTU(t, "eth0") != 1360 {
			missed++
		}
		if reset() {
			resets++
		}
		// One reset per 10 ms; after a slow recreation the schedule starts
		// again rather than catching up with resets back to back.
		next = next.Add(10 * time.Millisecond)
		if time.Until(next) < 5*time.Millisecond {
			next = time.Now().Add(10 * time.Millisecond)
		}
		time.Sleep(time.Until(next))
	}
	time.Sleep(100 * time.Millisecond)
	if got := ns.MTU(t, "eth0"); got != 1360 {
		t.Errorf("eth0 %d at the end", got)
	}
	final := measure()
	t.Logf("%d resets in %s, %d not repaired within 10 ms; at the end: %s", resets, d, missed, final)
	if missed > resets/1000 {
		t.Errorf("%d of %d resets were not repaired before the next one", missed, resets)
	}
	if final.goroutines > base.goroutines+5 || final.fds > base.fds+5 || final.rssKB > base.rssKB*3/2+10240 {
		t.Errorf("not flat: %s after warm-up, %s at the end", base, final)
	}
}

type usage struct{ goroutines, fds, rssKB int }

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %d open files, %d kB resident", u.goroutines, u.fds, u.rssKB)
}

func measure() usage {
	runtime.GC()
	u := usage{goroutines: runtime.NumGoroutine()}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.fds = len(fds)
	}
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				u.rssKB, _ = strconv.Atoi(strings.Fields(v)[0])
			}
		}
	}
	return u
}

// soakLogger keeps the agent's log in WSLMTU_SOAK_LOG when set.
func soakLogger(t *testing.T) *slog.Logger {
	path := os.Getenv("WSLMTU_SOAK_LOG")
	if path == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, nil))
}
