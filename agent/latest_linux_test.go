package agent

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/config"
)

// A setup that fails ends the worker before it runs anything; one that
// succeeds runs first, on the worker.
func TestLatestSetupDecides(t *testing.T) {
	ran := atomic.Int32{}
	l := startLatest(t.Context(), func() bool { return false }, func(int) { ran.Add(1) })
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		t.Fatal("a failed setup did not end the worker")
	}
	l.submit(1)
	if ran.Load() != 0 {
		t.Error("ran after a failed setup")
	}
	setup := make(chan bool, 1)
	got := make(chan int, 1)
	l = startLatest(t.Context(), func() bool { setup <- true; return true }, func(v int) { got <- v })
	l.submit(7)
	if !<-setup || <-got != 7 {
		t.Error("setup then the value: not in that order")
	}
}

// stop waits for a run under way (the agent's context is over by then);
// a worker never started (nil) stops at once.
func TestLatestStopWaitsForTheRun(t *testing.T) {
	var none *latest[int]
	none.stop(time.Second)
	var nobody *healthWorker
	nobody.recheck()
	nobody.finish(healthJob{}, time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	l := startLatest(ctx, nil, func(int) {
		close(started)
		<-release
		finished.Store(true)
	})
	l.submit(1)
	<-started
	cancel()
	go func() {
		time.Sleep(20 * time.Millisecond) // the run outlasts stop's call
		close(release)
	}()
	l.stop(5 * time.Second)
	if !finished.Load() {
		t.Error("stop returned while the run was under way")
	}
}

// A verify worker never started (nil) is asked, read and stopped safely.
func TestVerifyWorkerNil(t *testing.T) {
	var w *verifyWorker
	w.check(config.Default())
	if w.ready() != nil {
		t.Error("a nil worker is ready")
	}
	w.stop(time.Second)
}
