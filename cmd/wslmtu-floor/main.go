// Command wslmtu-floor is a measurement tool, not part of wslmtu: the .deb
// ships only wslmtu. It is the least any MTU reactor must do — subscribe to
// link events, and when the link's MTU is not the wanted one write it back —
// with no observation, plan, record, lock or log. The repair harness
// (TestRepairHarness in cmd/wslmtu) measures it against `wslmtu run` on the
// same namespace, so the agent's latency is read as a ratio to this floor.
//
//	ip netns exec NS wslmtu-floor [--link eth0] --mtu 1360
//
// It writes the MTU once at start when it differs, prints "ready" on
// stdout, and reacts until killed.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
)

func main() {
	name := flag.String("link", "eth0", "the link to keep")
	mtu := flag.Int("mtu", 0, "the MTU to keep it at")
	flag.Parse()
	if *mtu <= 0 {
		fmt.Fprintln(os.Stderr, "wslmtu-floor: --mtu is required")
		os.Exit(2)
	}
	if err := run(*name, *mtu); err != nil {
		fmt.Fprintln(os.Stderr, "wslmtu-floor:", err)
		os.Exit(1)
	}
}

func run(name string, mtu int) error {
	// Subscribe before reading, so no reset between the two is missed.
	updates := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribe(updates, make(chan struct{})); err != nil {
		return fmt.Errorf("subscribing to link events: %w", err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	index := l.Attrs().Index
	if l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("%s: setting mtu %d: %w", name, mtu, err)
		}
	}
	fmt.Println("ready")
	for u := range updates {
		if u.Attrs().Index == index && u.Attrs().MTU != mtu {
			if err := netlink.LinkSetMTU(u.Link, mtu); err != nil {
				fmt.Fprintf(os.Stderr, "wslmtu-floor: %s: setting mtu %d: %v\n", name, mtu, err)
			}
		}
	}
	return fmt.Errorf("the link subscription ended")
}
