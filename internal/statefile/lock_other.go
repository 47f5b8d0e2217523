//go:build !linux

package statefile

import "errors"

// Lock exists on other systems only so that shared code compiles; wslmtu
// changes MTUs on Linux alone.
type Lock struct{}

func Acquire(dir string) (*Lock, error) {
	return nil, errors.New("changing the host is supported on Linux only")
}

func (l *Lock) Release() {}
