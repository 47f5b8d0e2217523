package fix

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/firewall"
)

// NetlinkMTU reads and sets MTUs through a netlink handle.
type NetlinkMTU struct{ H *netlink.Handle }

func (n NetlinkMTU) MTU(name string) (int, error) {
	l, err := n.H.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %q not found: %w", name, err)
	}
	return l.Attrs().MTU, nil
}

func (n NetlinkMTU) SetMTU(name string, mtu int) error {
	l, err := n.H.LinkByName(name)
	if err != nil {
		return fmt.Errorf("interface %q not found: %w", name, err)
	}
	return n.H.LinkSetMTU(l, mtu)
}

// HostAt is the Host whose links the handle sees: the current namespace for
// netlink.NewHandle(), another one for netlink.NewHandleAt. Its firewall
// commands run in the caller's namespace; set NetNS to run them in the
// handle's, when that is another one.
func HostAt(h *netlink.Handle, src detect.Sources, stateDir string) Host {
	return Host{Sources: src, Links: &detect.Kernel{H: h}, MTUs: NetlinkMTU{H: h}, Store: Store{Dir: stateDir},
		Firewall: firewall.Open}
}
