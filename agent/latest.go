package agent

import (
	"context"
	"sync"
	"time"
)

// latest runs fn on a goroutine of its own for the latest value handed to
// it: a value that comes while fn runs replaces any still waiting, so a
// burst of changes costs one run, and the event loop never waits for fn
// (the firewall, the metrics file).
type latest[T any] struct {
	mu   sync.Mutex
	next *T
	wake chan struct{}
	done chan struct{}
}

// startLatest starts the goroutine; it ends with ctx. setup runs first on
// it (false: end at once).
func startLatest[T any](ctx context.Context, setup func() bool, fn func(T)) *latest[T] {
	l := &latest[T]{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		if setup != nil && !setup() {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-l.wake:
			}
			l.mu.Lock()
			v := l.next
			l.next = nil
			l.mu.Unlock()
			if v != nil {
				fn(*v)
			}
		}
	}()
	return l
}

// submit replaces whatever waits with v.
func (l *latest[T]) submit(v T) {
	l.mu.Lock()
	l.next = &v
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// stop drops what waits and waits (at most d) for a run under way to end;
// the goroutine itself ends with its context.
func (l *latest[T]) stop(d time.Duration) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.next = nil
	l.mu.Unlock()
	select {
	case <-l.done:
	case <-time.After(d):
	}
}
