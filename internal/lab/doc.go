// Package lab builds a network-namespace model of the WSL2 fragment black hole:
// a "wsl" namespace whose eth0 sits behind a "hyperv" namespace that NATs and
// silently drops IP fragments, and a "peer" on the LAN side, with a userspace
// WireGuard tunnel (wireguard-go) between wsl and peer. It exists so that e2e
// tests and the cmd/wslmtu-lab demo can show the hang and the fix on any Linux
// host (as root), and offers traffic checks (Download, Upload, Ping) that
// report whether data crosses the tunnel or hangs. With ExternalTunnel the
// caller runs tailscale0 itself: internal/testenv/tailnet, a module of its own,
// runs the real tailscaled there.
//
// The package only works on Linux; on other systems it is empty. It is a
// library the shipped demo (cmd/wslmtu-lab) links, so it never links package
// testing: tests build a lab through internal/testenv/labtest.
// It may import detect, internal/ns (its one way into a namespace),
// internal/probe (the ICMP echo) and internal/tunnel;
// its callers (the demo, the e2e tests) run fix in it.
package lab
