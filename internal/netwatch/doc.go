// Package netwatch is the agent's window on the kernel: one small interface
// that delivers link, route and rule changes and subscription failures, in
// the spirit of tailscale's netmon and wireguard-go's tun.Device.Events.
// Netlink (Linux) is the real one; internal/testenv/fakekernel is an in-memory one,
// so the agent's decisions are tested without root.
//
// It may import detect (its events carry detect's Link, Route and Rule) and
// internal/ns (the namespace it follows).
package netwatch
