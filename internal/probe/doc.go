// Package probe measures what a path to one host really carries: the largest
// ICMP echo that crosses with DF set, and whether fragmented packets get
// through. It explains the answer in words (the WSL2 NAT fragment bug, a PMTU
// black hole, or a healthy path).
//
// The search is pure and runs against the Path interface, so it is tested on
// simulated paths; Run (Linux) puts it on a real ICMP socket. The search sends
// many sizes at once and refines inside the bracket it found, so a probe takes
// about one timeout per round (usually two rounds), not one per bisection step.
//
// It may import detect (which link the route to the host takes, and whether
// it is a tunnel), fix (the size a path must carry under the plan in force),
// internal/config and internal/tunnel (the verdict's numbers). internal/lab uses Conn's ICMP
// echo too.
package probe
