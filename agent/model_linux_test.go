package agent

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/netwatch"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// A new WireGuard link appears down, before its port is set or its UAPI
// socket exists: wgctrl cannot read it yet. Once the link is up the model
// must ask again, or the tunnel stays unidentified and the tunnel scope
// falls back to raising eth0 for everything (found in the lab).
func TestModelAsksWireGuardAgainWhenTheLinkComesUp(t *testing.T) {
	dev, readable, calls := detect.WireGuardDevice{}, false, 0
	m := newModel(nil, detect.Sources{WireGuard: func(string) (detect.WireGuardDevice, bool) {
		calls++
		return dev, readable
	}})
	m.link(detect.Link{Name: "wg0", Index: 7, Kind: "tun"}, false)
	if _, ok := m.wireGuard("wg0"); ok {
		t.Fatal("an unreadable device read as ok")
	}
	dev, readable = detect.WireGuardDevice{ListenPort: 51820}, true
	m.link(detect.Link{Name: "wg0", Index: 7, Kind: "tun", Up: true}, false)
	if got, ok := m.wireGuard("wg0"); !ok || got.ListenPort != 51820 {
		t.Errorf("after the link came up: %+v, %v; want port 51820", got, ok)
	}
	// While it stays up, the answer is cached: a repair costs no wgctrl round trip.
	m.link(detect.Link{Name: "wg0", Index: 7, Kind: "tun", Up: true, MTU: 1400}, false)
	m.wireGuard("wg0")
	if calls != 2 {
		t.Errorf("wgctrl asked %d times, want 2", calls)
	}
}

// The model's route identity is detect.Route.Same: two routes are one entry
// in the view exactly when Same says they are one in the kernel. A field
// added to Route (or to Same) without keyOf following fails here.
func TestModelRouteIdentityIsSame(t *testing.T) {
	base := detect.Route{Family: 4, Table: 5200, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2, Dev: "eth0", Metric: 5, MTU: 1280}
	v := reflect.ValueOf(&base).Elem()
	for i := 0; i < v.NumField(); i++ {
		other := base
		f := reflect.ValueOf(&other).Elem().Field(i)
		switch f.Kind() {
		case reflect.Int:
			f.SetInt(f.Int() + 1)
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Bool:
			f.SetBool(!f.Bool())
		default:
			t.Fatalf("field %s of kind %s: teach this test to change it", v.Type().Field(i).Name, f.Kind())
		}
		if same, keyed := base.Same(other), keyOf(base) == keyOf(other); same != keyed {
			t.Errorf("changing %s: Same %v, same key %v", v.Type().Field(i).Name, same, keyed)
		}
	}
}

// Only the main table's default routes and the kept table are kept; the
// others are counted by table, so a free table is still chosen right, and
// the kernel's silent flushes (a link gone, down, or without its last IPv4
// address) are followed without a read.
func TestModelKeepsOnlyWhatItActsOn(t *testing.T) {
	m := newModel(nil, detect.Sources{})
	m.v4addrs = map[int]map[string]bool{}
	m.link(detect.Link{Name: "eth0", Index: 2, Up: true}, false)
	m.link(detect.Link{Name: "docker0", Index: 3, Up: true}, false)
	m.addr(netwatch.Addr{LinkIndex: 2, Family: 4, Prefix: "172.28.0.2/20"}, false)
	route := func(table int, dst string, link int) detect.Route {
		return detect.Route{Family: 4, Table: table, Dst: dst, LinkIndex: link}
	}
	relevant := func(r detect.Route, gone bool) bool { return m.route(r, gone) }
	m.keepTable(5200)
	if !relevant(route(detect.MainTable, "default", 2), false) || !relevant(route(5200, "default", 2), false) {
		t.Error("a default route of main or a route of the kept table is not relevant")
	}
	for i := 0; i < 1000; i++ {
		if relevant(route(100, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), 2+i%2), false) {
			t.Fatal("a route of another table is relevant")
		}
	}
	relevant(route(detect.MainTable, "10.9.0.0/16", 2), false) // main, not default: neither kept nor counted
	relevant(route(77, "default", 3), false)
	relevant(route(77, "default", 3), false) // the same route again (a replace): one route
	if got := m.snapshot(); len(got.Routes) != 2 || !slices.Equal(got.OtherTables, []int{77, 100}) {
		t.Fatalf("routes %v, other tables %v; want the 2 kept ones, tables 77 and 100", got.Routes, got.OtherTables)
	}
	relevant(route(77, "default", 3), true)
	if got := m.snapshot().OtherTables; !slices.Equal(got, []int{100}) {
		t.Errorf("after table 77's only route went: %v", got)
	}
	// docker0 goes down: its IPv4 routes go without a word, eth0's stay.
	m.link(detect.Link{Name: "docker0", Index: 3}, false)
	if got := m.others.perTable[100]; got != 500 || m.routesStale {
		t.Errorf("after docker0 went down: %d routes counted in table 100, want eth0's 500; stale %v", got, m.routesStale)
	}
	// eth0 loses its last IPv4 address: every IPv4 route through it goes,
	// ours included, which must be read again.
	m.addr(netwatch.Addr{LinkIndex: 2, Family: 4, Prefix: "172.28.0.2/20"}, true)
	if got := m.snapshot().OtherTables; len(got) != 0 || !m.routesStale {
		t.Errorf("after eth0's last address went: other tables %v, stale %v", got, m.routesStale)
	}
	// A table counted so far becomes ours (the plan chose it): it is read
	// in full from now on.
	m.routesStale = false
	relevant(route(5300, "default", 2), false)
	m.keepTable(5300)
	if len(m.snapshot().OtherTables) != 0 || !m.routesStale {
		t.Errorf("a newly kept table: other tables %v, stale %v", m.snapshot().OtherTables, m.routesStale)
	}
}

// A full read keeps the same, and a read the kernel reports interrupted is
// made again from scratch.
func TestModelReadAllKeepsOnlyWhatItActsOn(t *testing.T) {
	k := fakekernel.NewWSLUnmarked(1280, 1280)
	for i := 0; i < 300; i++ {
		k.ReplaceRoute(detect.Route{Family: 4, Table: 100 + i%3, Dst: fmt.Sprintf("10.0.%d.0/24", i), LinkIndex: 2})
	}
	k.ReplaceRoute(detect.Route{Family: 4, Table: 5200, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2})
	d := &interruptingDumper{k: k, interruptions: 2}
	m := newModel(k, detect.Sources{})
	m.dump = d
	m.keepTable(5200)
	if err := m.readAll(); err != nil {
		t.Fatal(err)
	}
	snap := m.snapshot()
	var got []string
	for _, r := range snap.Routes {
		got = append(got, r.String())
	}
	want := []string{"default via 172.28.0.1 dev #2", "default via 172.28.0.1 dev #2 table 5200"}
	if !slices.Equal(got, want) || !slices.Equal(snap.OtherTables, []int{100, 101, 102}) || d.reads != 3 {
		t.Errorf("routes %q, other tables %v after %d reads; want %q, tables 100–102, 3 reads", got, snap.OtherTables, d.reads, want)
	}
	if n := m.others.perTable[100] + m.others.perTable[101] + m.others.perTable[102]; n != 300 {
		t.Errorf("%d routes counted, want 300", n)
	}
	// The addresses are known, so a flush can be told; not when their read
	// failed.
	if !m.v4addrs[2]["172.28.0.2/20"] {
		t.Errorf("IPv4 addresses %v, want eth0's", m.v4addrs)
	}
	// Interrupted at every try (a burst): three tries, then the events
	// queued behind the dumps bring the view up to date.
	d.interruptions, d.reads = 1000, 0
	if err := m.readAll(); err != nil || d.reads != 3 {
		t.Errorf("always interrupted: %d reads (%v), want 3 and no error", d.reads, err)
	}
	d.interruptions = 0
	// Reading the kept routes again reads the main table and each kept one.
	if err := m.readKept(); err != nil || len(m.snapshot().Routes) != 2 {
		t.Errorf("the kept routes read again (%v): %v, want the main table's and table 5200's default", err, m.snapshot().Routes)
	}
	d.addrErr = errors.New("dump interrupted (fake)")
	if err := m.readAll(); err != nil || m.v4addrs != nil {
		t.Errorf("addresses not read (%v): %v, want not known", err, m.v4addrs)
	}
}

// interruptingDumper dumps the fake kernel, the first reads cut short and
// reported interrupted, as the kernel does when a table changes mid-dump.
type interruptingDumper struct {
	k             *fakekernel.Kernel
	interruptions int
	reads         int
	addrErr       error
}

func (d *interruptingDumper) Routes(table int, fn func(detect.Route)) error {
	d.reads++
	routes, _ := d.k.Routes()
	for i, r := range routes {
		if d.interruptions > 0 && i == len(routes)/2 {
			d.interruptions--
			return netwatch.ErrDumpInterrupted
		}
		if table == 0 || r.Table == table {
			fn(r)
		}
	}
	return nil
}

// Addrs reports eth0's address, then addrErr.
func (d *interruptingDumper) Addrs(fn func(netwatch.Addr)) error {
	fn(netwatch.Addr{Family: 4, LinkIndex: 2, Prefix: "172.28.0.2/20"})
	return d.addrErr
}

// The agent's own writes are in the model at once: an MTU by the link's
// index (or, without one, by its name), a deleted rule and no other.
func TestModelAppliedRecordsOwnWrites(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	m := newModel(k, detect.Sources{})
	if err := m.readAll(); err != nil {
		t.Fatal(err)
	}
	other := detect.Rule{Family: 4, Priority: 5300, Table: 5300, SuppressPrefixlen: -1}
	ours := detect.Rule{Family: 4, Priority: 5200, Table: 5200, SuppressPrefixlen: -1}
	m.rules = []detect.Rule{other, ours}
	m.applied([]fix.Change{
		{Action: fix.Action{Link: "eth0", Index: 2, From: 1280, To: 1360}, Found: 1280, Wrote: true},
		{Action: fix.Action{Link: "tailscale0", From: 1280, To: 1200}, Found: 1280, Wrote: true},
		{Rule: &fix.RuleAction{Rule: ours}, Wrote: true},
	})
	for idx, l := range m.links {
		want := k.MTU(l.Name)
		switch l.Name {
		case "eth0":
			want = 1360
		case "tailscale0":
			want = 1200
		}
		if l.MTU != want {
			t.Errorf("link #%d %s at %d in the model, want %d", idx, l.Name, l.MTU, want)
		}
	}
	if !slices.Equal(m.rules, []detect.Rule{other}) {
		t.Errorf("rules %v after deleting ours, want only %v", m.rules, other)
	}
}

// The kernel's reserved tables (0 and 253–255) are never counted as in use;
// table 0 is never kept; the snapshot lists links by index.
func TestModelTablesAndOrder(t *testing.T) {
	for table, want := range map[int]bool{0: true, 1: false, 252: false, 253: true, 254: true, 255: true, 256: false} {
		if reserved(table) != want {
			t.Errorf("reserved(%d) = %v", table, !want)
		}
	}
	k := fakekernel.NewWSL(1280, 1280)
	m := newModel(k, detect.Sources{})
	if err := m.readAll(); err != nil {
		t.Fatal(err)
	}
	m.keepTable(0)
	if len(m.keep) != 0 {
		t.Errorf("table 0 kept: %v", m.keep)
	}
	links := m.snapshot().Links
	if !slices.IsSortedFunc(links, func(a, b detect.Link) int { return a.Index - b.Index }) || len(links) < 3 {
		t.Errorf("snapshot links %v, want them by index", links)
	}
}

// A WireGuard device is asked once per link: a tunnel made again (a new
// index, the same name) is asked again, even when no event said the old
// one went under that name.
func TestModelAsksWireGuardOncePerLink(t *testing.T) {
	asked := 0
	port := 51820
	m := newModel(nil, detect.Sources{WireGuard: func(string) (detect.WireGuardDevice, bool) {
		asked++
		return detect.WireGuardDevice{ListenPort: port}, true
	}})
	// One other link only: whatever order the links are looked at in, the
	// device is told by its own index.
	wg := detect.Link{Name: "wg0", Index: 5, MTU: 1420, Kind: "wireguard", Up: true}
	m.link(detect.Link{Name: "eth0", Index: 2, MTU: 1500, Up: true}, false)
	m.link(wg, false)
	m.wireGuard("wg0")
	if d, _ := m.wireGuard("wg0"); asked != 1 || d.ListenPort != 51820 {
		t.Fatalf("asked %d times, port %d; want once, 51820", asked, d.ListenPort)
	}
	// Renamed away and deleted under its new name: no event says wg0 went.
	old := wg
	old.Name = "wg-old"
	m.link(old, false)
	m.link(old, true)
	port = 40000
	m.link(detect.Link{Name: "wg0", Index: 6, MTU: 1420, Kind: "wireguard", Up: true}, false)
	if d, _ := m.wireGuard("wg0"); asked != 2 || d.ListenPort != 40000 {
		t.Errorf("wg0 made again: asked %d times, port %d; want twice, 40000", asked, d.ListenPort)
	}
}

// The tables in use follow the routes as they come and go: a table seen
// after the list was made is in the next one, and a link's routes counted
// after one of them went are all forgotten with the link.
func TestModelOtherTablesFollowChanges(t *testing.T) {
	m := newModel(nil, detect.Sources{})
	m.link(detect.Link{Name: "docker0", Index: 3, Up: true}, false)
	r := func(table int, dst string) detect.Route {
		return detect.Route{Family: 4, Table: table, Dst: dst, LinkIndex: 3}
	}
	m.route(r(100, "10.1.0.0/24"), false)
	m.route(r(100, "10.2.0.0/24"), false)
	if got := m.snapshot().OtherTables; !slices.Equal(got, []int{100}) {
		t.Fatalf("other tables %v, want 100", got)
	}
	m.route(r(300, "10.3.0.0/24"), false)
	if got := m.snapshot().OtherTables; !slices.Equal(got, []int{100, 300}) {
		t.Errorf("a new table after the list was made: %v, want 100 and 300", got)
	}
	m.route(r(100, "10.1.0.0/24"), true)
	m.route(r(300, "10.3.0.0/24"), true)
	m.link(detect.Link{Name: "eth0", Index: 2, Up: true}, false)
	m.route(detect.Route{Family: 4, Table: 200, Dst: "10.4.0.0/24", LinkIndex: 2}, false)
	m.route(detect.Route{Family: 6, Table: 600, Dst: "fd00::/64", LinkIndex: 3}, false)
	m.others.dropLink(3, 4)
	if got := m.snapshot().OtherTables; !slices.Equal(got, []int{200, 600}) {
		t.Errorf("docker0's IPv4 routes forgotten: tables %v in use, want eth0's 200 and docker0's IPv6 600", got)
	}
	m.others.dropLink(3, 0)
	if got := m.snapshot().OtherTables; !slices.Equal(got, []int{200}) {
		t.Errorf("all of docker0's routes forgotten: tables %v in use, want eth0's 200", got)
	}
}

// A table that becomes ours is no longer counted; the others' routes stay
// counted by link, so a flush still forgets them.
func TestModelKeptTableLeavesTheOthersCounted(t *testing.T) {
	m := newModel(nil, detect.Sources{})
	m.link(detect.Link{Name: "eth0", Index: 2, Up: true}, false)
	m.route(detect.Route{Family: 4, Table: 100, Dst: "10.1.0.0/24", LinkIndex: 2}, false)
	m.route(detect.Route{Family: 4, Table: 200, Dst: "10.2.0.0/24", LinkIndex: 2}, false)
	m.keepTable(100)
	if got := m.snapshot().OtherTables; !slices.Equal(got, []int{200}) {
		t.Fatalf("table 100 kept: tables %v counted, want 200", got)
	}
	m.others.dropLink(2, 0)
	if got := m.snapshot().OtherTables; len(got) != 0 {
		t.Errorf("eth0's routes forgotten, and tables %v still counted", got)
	}
}

// The record is parsed once while its file stays the same, read again when
// another wslmtu replaced it, and a broken one is an error, never an empty
// record.
func TestRecordCacheFollowsTheFile(t *testing.T) {
	store := fix.Store{Dir: t.TempDir()}
	c := recordCache{store: store}
	save := func(before int) {
		t.Helper()
		if err := store.SaveRecord(fix.Record{Version: 2, Links: map[string]fix.LinkRecord{"eth0": {Before: before, Wrote: 1360}}}); err != nil {
			t.Fatal(err)
		}
	}
	save(1280)
	if rec, err := c.load(); err != nil || rec.Links["eth0"].Before != 1280 {
		t.Fatalf("load = %+v, %v", rec, err)
	}
	save(1300)
	if rec, err := c.load(); err != nil || rec.Links["eth0"].Before != 1300 {
		t.Errorf("after another wslmtu saved: %+v, %v; want before 1300", rec, err)
	}
	if err := os.WriteFile(store.RecordPath(), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rec, err := c.load(); err == nil {
		t.Errorf("a broken record loaded as %+v", rec)
	}
	if c.valid {
		t.Error("a broken record left the cache valid")
	}
}
