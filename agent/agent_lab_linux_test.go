package agent_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/agent"
	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/lab"
)

// lockedBuffer collects the agent's log from its goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAgentInLab runs the agent against the namespace model of WSL2 and
// replays what breaks a one-time fix: tailscaled reconnecting at another MTU
// and WSL recreating eth0 at 1280. After each, the agent must have eth0 wide
// enough again within 2 s, and the 55 kB transfers that hang without it
// must cross in both directions.
func TestAgentInLab(t *testing.T) {
	l := lab.NewForTest(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280})
	ns, nl := l.WSLNetNSHandle(), l.WSLNetlink()

	cfg := config.Default()
	cfg.AssumeWSL = true
	cfg.RevertOnStop = true
	stateDir := t.TempDir()
	var logs lockedBuffer
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// mss_clamp is off and the state directory is fresh, so the agent
		// never touches iptables, which would act on this goroutine's
		// (the host's) namespace rather than the lab's.
		done <- agent.Run(ctx, agent.Options{
			Config: cfg,
			Host:   fix.HostAt(nl, detect.HostSources(), stateDir),
			Netns:  &ns,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Notify: func(string) {},
			Ready:  ready,
		})
	}()
	var stopOnce sync.Once
	var runErr error
	stop := func() error {
		stopOnce.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(5 * time.Second):
				runErr = context.DeadlineExceeded
				t.Errorf("agent.Run did not return within 5s of cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() || testing.Verbose() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped before ready: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("agent not ready within 5s")
	}

	// The first reconcile happens before Ready.
	if got := l.EthMTU(); got != 1360 {
		t.Fatalf("eth0 after start = %d, want 1360", got)
	}
	transfersWork(t, l, "after start")

	// tailscaled reconnects, this time at 1400: eth0 must follow to exactly
	// 1480. wireguard-go (like tailscaled's fork of it) creates the tun at
	// the kernel's default 1500 and only then sets its MTU and brings it up;
	// the agent leaves down tunnels out, so that 1500 never counts.
	if err := l.RestartTunnel(1400); err != nil {
		t.Fatalf("RestartTunnel(1400): %v", err)
	}
	waitEth(t, l, 1480, 2*time.Second, "after tailscale0 came back at 1400")
	transfersWork(t, l, "tunnel 1400")

	// WSL restarts: eth0 is deleted and made again at 1280.
	if err := l.RecreateEth(1280); err != nil {
		t.Fatalf("RecreateEth(1280): %v", err)
	}
	waitEth(t, l, 1480, 2*time.Second, "after eth0 was recreated at 1280")
	transfersWork(t, l, "eth0 recreated")

	if st, err := agent.ReadStatus(stateDir); err == nil && st.LastRepair != nil {
		t.Logf("repairs: %d, last: %s", st.Repairs, st.LastRepair)
	}

	// revert_on_stop puts back the MTU eth0 had before the agent first wrote it.
	if err := stop(); err != nil {
		t.Fatalf("agent.Run returned %v", err)
	}
	if got := l.EthMTU(); got != 1280 {
		t.Errorf("eth0 after stop with revert_on_stop = %d, want 1280", got)
	}
}

// waitEth waits until eth0 is at least want, since the agent repairs from
// its own goroutine, and reports how long that took.
func waitEth(t *testing.T, l *lab.Lab, want int, timeout time.Duration, when string) {
	t.Helper()
	start := time.Now()
	for {
		got := l.EthMTU()
		if got == want {
			t.Logf("%s: eth0 %d after %v", when, got, time.Since(start).Round(time.Microsecond))
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: eth0 = %d after %v, want %d", when, got, timeout, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// transfersWork runs the 55 kB download and upload concurrently.
func transfersWork(t *testing.T, l *lab.Lab, stage string) {
	t.Helper()
	checks := []func(context.Context) lab.Result{l.Download, l.Upload}
	results := make([]lab.Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c(t.Context())
		}()
	}
	wg.Wait()
	for _, r := range results {
		if !r.OK {
			t.Errorf("%s: want ok, got %s", stage, r)
		} else {
			t.Logf("%s: %s", stage, r)
		}
	}
}
