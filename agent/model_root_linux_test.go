package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/netwatch"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// On a real kernel with thousands of routes in another table (a BGP
// daemon, a big VPN), the model keeps only the routes it acts on — the
// main table's default routes and its own table — and of the rest only
// which tables are in use, however it learns them: a full read or events.
func TestModelOnARealKernelKeepsOnlyWhatItActsOn(t *testing.T) {
	netnstest.RequireRoot(t, "fills a namespace's routing table")
	ns := netnstest.NewWSL(t, 1280, 1280)
	var lines strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&lines, "route add 10.%d.%d.0/24 dev eth0 table 100\n", i/256, i%256)
	}
	batch := filepath.Join(t.TempDir(), "routes")
	if err := os.WriteFile(batch, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", ns.Name, "-batch", batch).CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v\n%s", err, out)
	}
	nsn := netnstest.NetNS(t, ns)
	m := newModel(&detect.Kernel{H: ns.Handle}, detect.Sources{})
	m.dump = netwatch.Netlink{NS: nsn}
	m.keepTable(5200)
	if err := m.readAll(); err != nil {
		t.Fatal(err)
	}
	check := func(how string) {
		t.Helper()
		snap := m.snapshot()
		if len(snap.Routes) > 4 {
			t.Errorf("after %s the model holds %d routes, want only the main table's default routes and table 5200's", how, len(snap.Routes))
		}
		if !slices.Contains(snap.OtherTables, 100) {
			t.Errorf("after %s table 100 is not known to be in use: %v", how, snap.OtherTables)
		}
	}
	check("a full read")
	// The same routes arriving as events, one by one.
	for i := range 5000 {
		m.route(detect.Route{Family: 4, Table: 100, Dst: fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256), LinkIndex: 2}, false)
	}
	check("5000 route events")
}
