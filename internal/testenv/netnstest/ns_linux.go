package netnstest

import (
	"testing"

	"github.com/wslmtu/wslmtu/internal/ns"
)

// NetNS opens the namespace (its Handle is for netlink subscriptions);
// closed with the test.
func NetNS(t testing.TB, n *NS) *ns.NetNS {
	t.Helper()
	h, err := ns.Open("/var/run/netns/" + n.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}
