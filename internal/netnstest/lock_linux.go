package netnstest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// uapiLockPath serialises every test's tailscale0 over its UAPI socket.
const uapiLockPath = "/var/run/wireguard/wslmtu-lab-tailscale0.lock"

// LockTailscale0 takes the lock that keeps a userspace tailscale0's UAPI
// socket (/var/run/wireguard/tailscale0.sock) from being read for another
// namespace's tailscale0: wgctrl finds a userspace device by name in one
// directory shared by every namespace. exclusive for a test that runs a
// wireguard-go tailscale0 with a UAPI socket, shared for the others; it
// waits at most wait. Closing the file releases it.
func LockTailscale0(exclusive bool, wait time.Duration) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(uapiLockPath), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(uapiLockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", uapiLockPath, err)
		}
	}
}
