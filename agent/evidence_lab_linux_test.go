package agent

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/internal/lab"
)

// tailscaled's own WSL fix ran before the agent (eth0 1280 → 1360 for every
// packet, with its rules in place): the agent must not take 1360 for what
// Windows chose. The tunnel and the upload to the server behind the Windows
// VPN work, and revert puts back 1280, Windows' value, not tailscaled's.
func TestLabTailscaledFixIsNotWhatWindowsChose(t *testing.T) {
	t.Parallel()
	r := newReplayLab(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280, CorporateVPN: true})
	before := r.dump()
	if err := r.l.SetEthMTU(1360); err != nil { // tailscaled's fixupWSLMTU
		t.Fatal(err)
	}
	r.start(labAgentConfig())
	r.works("tailscaled's fix, then the agent")
	if logs := r.logs.String(); !containsAll(logs, "took over tailscaled's own WSL fix", "windows_chose=1280") {
		t.Errorf("the log does not say it took over tailscaled's fix:\n%s", logs)
	}
	r.revertLeaves(before)
	if got := r.l.EthMTU(); got != 1280 {
		t.Errorf("eth0 %d after the revert, want 1280 (what Windows chose)", got)
	}
}

// A default route that already has an mtu of its own (an earlier
// workaround, a network manager): at what Windows chose it is kept and the
// tunnel still gets its rules and table; above it, it is capped like any
// other and revert puts it back.
func TestLabDefaultRouteWithItsOwnMTU(t *testing.T) {
	t.Parallel()
	for _, own := range []int{1280, 1500} {
		t.Run(fmt.Sprint(own), func(t *testing.T) {
			t.Parallel()
			r := newReplayLab(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280, CorporateVPN: true})
			setDefaultRouteMTU(t, r.l, own)
			before := r.dump()
			r.start(labAgentConfig())
			r.works(fmt.Sprintf("default route with mtu %d", own))
			r.revertLeaves(before)
		})
	}
}

func setDefaultRouteMTU(t *testing.T, l *lab.Lab, mtu int) {
	t.Helper()
	h := l.WSLNetlink()
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range routes {
		if rt.Dst == nil || rt.Dst.IP.IsUnspecified() {
			rt.MTU = mtu
			if err := h.RouteReplace(&rt); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
