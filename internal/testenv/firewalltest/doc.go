// Package firewalltest is an in-memory firewall.Runner: each backend's
// rulesets as text, iptables-save printing them, iptables-restore --noflush
// applying a script to them atomically the way iptables 1.8.9 was measured
// to (a declared user chain is flushed, -D by spec, -X only an empty
// unreferenced chain), and the nft commands revert uses. Tests of the
// firewall's users run without root and count every program started.
//
// It is for tests only. It may import internal/firewall.
package firewalltest
