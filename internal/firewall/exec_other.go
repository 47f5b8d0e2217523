//go:build !linux

package firewall

// Open exists on other systems only so that shared code compiles: wslmtu
// clamps the MSS on Linux alone.
func Open(path string) (Runner, error) {
	return nil, Unavailable("iptables exists on Linux only")
}
