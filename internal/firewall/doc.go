// Package firewall keeps wslmtu's MSS-clamping rules in the mangle table of
// iptables and ip6tables, after tailscale's util/linuxfw and flannel's
// iptables-restore applier:
//
//   - the wanted state is a pure value (Rules: our two chains' contents);
//   - the observed state is one save per family, parsed by a pure parser
//     (Parse);
//   - a pure diff (Diff) gives a Patch: the iptables-restore lines that turn
//     one into the other, with what each step does in the README's words;
//   - each family's patch is applied by one `iptables-restore --noflush`, which
//     commits atomically, inside an explicitly given network namespace (Exec).
//
// Everything wslmtu adds lives in two chains of its own, WSLMTU-IN and
// WSLMTU-OUT, plus one jump each from PREROUTING and POSTROUTING, so a reader
// of iptables-save (and revert) can tell our rules from anyone else's.
//
// Of this module it imports only internal/ns (fix is its one user); it runs
// every program inside the namespace it is given. Inside a test binary (one
// with the test.v flag) it refuses to run iptables in a namespace not made
// by `ip netns add`, so no test can touch the host's firewall; it does not
// link package testing for that.
package firewall
