//go:build !linux

package statefile

import (
	"errors"
	"time"
)

// Lock exists on other systems only so that shared code compiles; wslmtu
// changes MTUs on Linux alone.
type Lock struct{}

const (
	LinksLock    = "lock"
	FirewallLock = "firewall.lock"
)

var errLinuxOnly = errors.New("changing the host is supported on Linux only")

// ErrLockTimeout marks a lock that stayed held for the whole timeout.
var ErrLockTimeout = errors.New("lock timeout")

// DefaultLockTimeout is how long a command waits for another wslmtu.
const DefaultLockTimeout = 30 * time.Second

func Acquire(dir, name string, timeout time.Duration, onWait func(holder string)) (*Lock, error) {
	return nil, errLinuxOnly
}

func (l *Lock) Release()       {}
func (l *Lock) Holder() string { return "" }

// HeldError is a lock held by a wslmtu agent.
type HeldError struct {
	Path, Holder string
	PID          int
}

func (e *HeldError) Error() string { return e.Path + " is held by " + e.Holder }
