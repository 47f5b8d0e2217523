// Package tunnel owns the arithmetic of tunnels: what each kind adds to a
// packet, how WireGuard pads, which outer MTU carries a tunnel without
// fragments, the largest inner packet that crosses a given outer MTU, and
// the TCP MSS that fits. fix, doctor, probe, the Windows side and the lab all
// take their numbers from here, so a number measured once is written once.
//
// It imports the standard library only.
package tunnel
