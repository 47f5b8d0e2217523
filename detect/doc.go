// Package detect gathers facts about the host: whether it is a WSL distro,
// which WSL version and networking mode, the outer interface and the tunnels.
// It reads through an fs.FS and a small netlink interface so tests can feed
// fixtures of real strings and links.
//
// It owns the one rule for what is a tunnel and what is the outer
// interface, each tunnel's kind, and how a tunnel's own packets are
// recognised, from evidence only (wgctrl, tailscaled's own rules, a
// [[tunnel]] table), never from a name. Derive is pure: Observe (after its
// netlink dumps) and the agent (from its model) both use it.
//
// It may import internal/config and internal/tunnel only; fix, the agent
// and the CLI import it, never the other way round.
package detect
