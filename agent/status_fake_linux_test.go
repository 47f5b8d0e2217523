package agent

import (
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/fakekernel"
)

// A route repair is shown in status as the change it was (the route and
// its mtu), not as an interface's "mtu 0 → 0".
func TestStatusShowsARouteRepairAsItWas(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "")
	// WSL sends the default route again without its mtu (mirrored mode's
	// refresh does).
	k.ReplaceRoute(detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2})
	eventually(t, "the route's mtu put back", func() bool {
		r, ok := k.Route(detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2})
		return ok && r.MTU == 1280
	})
	var text string
	eventually(t, "the route repair in the counters file", func() bool {
		st, err := ReadStatus(a.dir)
		text = st.String()
		return err == nil && st.LastRepair != nil && strings.HasPrefix(st.LastRepair.Cause, "route ")
	})
	want := "last repair: route default via 172.28.0.1 dev eth0: mtu 1280 ("
	if !strings.Contains(text, want) || strings.Contains(text, "mtu 0 → 0") {
		t.Errorf("status says:\n%s\nwant %q", text, want)
	}
}
