// Package wsldistro is a WSL2 distro as detect sees it from inside: the
// kernel's strings and the interop marker under /proc, and wslinfo
// reporting the networking mode. Tests hand it to detect.Sources so that
// the environment check passes without a WSL machine.
//
// It is for tests only. It imports no package of this module, so detect's
// own tests can use it too.
package wsldistro

import (
	"errors"
	"testing/fstest"
)

// Kernel is the release a current WSL2 kernel reports.
const Kernel = "5.15.167.4-microsoft-standard-WSL2"

// Root is a WSL2 distro's files that detect reads: the kernel release and
// version, and the WSLInterop binfmt entry. Each call returns a new map, so
// a test may add or remove files.
func Root() fstest.MapFS {
	return fstest.MapFS{
		"proc/sys/kernel/osrelease":          {Data: []byte(Kernel + "\n")},
		"proc/version":                       {Data: []byte("Linux version " + Kernel + " (root@f9c826d3017f) #1 SMP\n")},
		"proc/sys/fs/binfmt_misc/WSLInterop": {Data: []byte("enabled\n")},
	}
}

// Wslinfo is a detect.Sources.Run on which `wslinfo --networking-mode`
// prints mode ("nat", "mirrored", "virtioproxy"); any other program is not
// installed.
func Wslinfo(mode string) func(name string, args ...string) ([]byte, error) {
	return func(name string, _ ...string) ([]byte, error) {
		if name != "wslinfo" {
			return nil, errors.New(name + ": not installed (wsldistro)")
		}
		return []byte(mode + "\n"), nil
	}
}
