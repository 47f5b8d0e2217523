package windows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPlanService(t *testing.T) {
	ds, _ := ParseDistros(fixture(t, "wsl_list_verbose.txt"))
	p, err := PlanService(ds, ServiceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Distro != "Ubuntu-24.04" ||
		p.KeepAlive.String() != "wsl.exe --distribution Ubuntu-24.04 --user root -- sleep infinity" ||
		p.OnNetworkChange.String() != "wsl.exe --distribution Ubuntu-24.04 --user root -- wslmtu fix" {
		t.Errorf("plan %+v", p)
	}
	p, err = PlanService(ds, ServiceConfig{Distro: "debian", RunAgent: true})
	if err != nil || p.KeepAlive.String() != "wsl.exe --distribution Debian --user root -- wslmtu run" {
		t.Errorf("plan %+v %v", p, err)
	}
	for cfg, want := range map[ServiceConfig]string{
		{Distro: "Arch"}:   `no WSL distro named "Arch" (installed: Ubuntu-24.04, docker-desktop, Debian, Legacy)`,
		{Distro: "Legacy"}: `distro "Legacy" is WSL1`,
	} {
		if _, err := PlanService(ds, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", cfg, err, want)
		}
	}
	if _, err := PlanService(ds[1:], ServiceConfig{}); err == nil || !strings.Contains(err.Error(), "no default") {
		t.Errorf("no default: %v", err)
	}
}

// TestSupervisor drives the service loop with a fake runner: the keep-alive
// blocks until cancelled, is restarted when it dies, and a burst of network
// changes produces fixes. Synchronisation is through channels, not sleeps.
func TestSupervisor(t *testing.T) {
	ds, _ := ParseDistros(fixture(t, "wsl_list_verbose.txt"))
	plan, _ := PlanService(ds, ServiceConfig{})

	keepAlives := make(chan struct{}, 10)
	fixes := make(chan struct{}, 10)
	var mu sync.Mutex
	first := true
	r := &fakeRunner{hook: func(ctx context.Context, cmd string) ([]byte, error, bool) {
		switch cmd {
		case plan.KeepAlive.String():
			keepAlives <- struct{}{}
			mu.Lock()
			die := first
			first = false
			mu.Unlock()
			if die { // the first keep-alive dies at once: must be restarted
				return nil, exitErr(1, "wsl.exe: distro terminated"), true
			}
			<-ctx.Done()
			return nil, ctx.Err(), true
		case plan.OnNetworkChange.String():
			fixes <- struct{}{}
			return []byte("eth0: mtu 1280 → 1360\n"), nil, true
		}
		return nil, nil, false
	}}
	changes := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{Runner: r, Plan: plan, Changes: changes, RestartMin: time.Millisecond, RestartMax: time.Millisecond}
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()

	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second): // generous: only a hang fails
			t.Fatalf("timed out waiting for %s; calls %q", what, r.Calls())
		}
	}
	wait(keepAlives, "keep-alive")
	wait(keepAlives, "keep-alive restart")
	changes <- struct{}{}
	wait(fixes, "fix after a change")
	changes <- struct{}{}
	wait(fixes, "second fix")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Calls() {
		if c != plan.KeepAlive.String() && c != plan.OnNetworkChange.String() {
			t.Errorf("unexpected command %q", c)
		}
	}
}
