// Package tailnet proves wslmtu against the real tailscaled: its tests run
// the lab's model of WSL behind Hyper-V's NAT (internal/lab) with real
// tailscaled nodes in WSL and in the peer, joined to a control server from
// tailscale's own test code, and the real wslmtu binary as the agent.
//
// It is a module of its own so that tailscale.com never enters wslmtu's
// dependency graph or its binary. It has tests only; they need root and
// skip without it. WSLMTU_TAILSCALE_VERSION picks the tailscaled release
// the nodes run (default: the one in this module's go.mod).
package tailnet
