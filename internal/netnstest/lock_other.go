//go:build !linux

package netnstest

import (
	"errors"
	"os"
	"time"
)

// LockTailscale0 needs Linux, as every namespace test does.
func LockTailscale0(exclusive bool, wait time.Duration) (*os.File, error) {
	return nil, errors.New("netnstest: network namespaces need Linux")
}
