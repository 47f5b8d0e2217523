// Package netnstest gives root tests a throwaway network namespace shaped
// like a WSL2 distro: a veth eth0 holding the default route and a tun
// tailscale0, both at 1280 unless told otherwise.
//
// It is for tests only (it takes a testing.TB and removes what it made when
// the test ends). It imports internal/ns only (NetNS).
package netnstest
