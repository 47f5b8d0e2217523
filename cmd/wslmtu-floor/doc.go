// Command wslmtu-floor is a measurement tool, not part of wslmtu: the .deb
// ships only wslmtu. It is the least any MTU reactor must do — read link
// events, and when the link's MTU is not the wanted one write it back —
// with no observation, plan, record, lock or log. The repair harness
// (TestRepairHarness in cmd/wslmtu) measures it against `wslmtu run` on the
// same namespace, so the agent's latency is read as a ratio to this floor.
//
//	ip netns exec NS wslmtu-floor [--link eth0] --mtu 1360 [--library]
//
// By default it is as lean as a reactor gets: one thread blocked in
// recvfrom on the link group, the MTU read from the raw message, one
// prebuilt RTM_SETLINK written and its ack read, nothing allocated.
// --library is what a plain Go reactor does instead: vishvananda/netlink's
// LinkSubscribe (a goroutine and a channel, each event fully decoded) and
// LinkSetMTU. It writes the MTU once at start when it differs, prints
// "ready" on stdout, and reacts until killed. It imports nothing of this
// module.
package main
