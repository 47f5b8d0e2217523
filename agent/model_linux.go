package agent

import (
	"cmp"
	"errors"
	"hash/maphash"
	"os"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/netwatch"
)

// model is the agent's view of the kernel: read in full at start and after
// a failed subscription, then kept current from events, so a repair plans
// from memory instead of dumping links and routes first.
//
// It keeps only what a plan acts on: every link, the policy rules (a few,
// and tailscaled's are evidence), the main table's default routes and every
// route of wslmtu's own table. Of the other tables it keeps a 64-bit hash
// per route, grouped by table, family and link: enough to know which tables
// are in use (a free one is chosen for the tunnel scope) and to follow the
// kernel when it flushes a link's routes without a word, for 16 bytes a
// route and no search per event. A host with 100k routes elsewhere (a full
// BGP table, a container host) costs neither memory nor CPU per event.
//
// Parts an event cannot describe (which rules changed; the routes a link,
// going down or losing its last IPv4 address, took with it) are marked
// stale and read again, table by table, before the next plan.
type model struct {
	read detect.Netlink
	// dump reads routes and addresses one at a time; nil reads them through
	// read (the fake kernel), filtered here.
	dump netwatch.Dumper
	src  detect.Sources

	links map[int]detect.Link
	// routes are the kept routes, without Dev (Derive fills it in).
	routes map[routeID]detect.Route
	// keep are the tables kept in full: wslmtu's own, as the revert record
	// and the plans name it.
	keep   map[int]bool
	others otherTables
	// v4addrs are each link's IPv4 addresses, to tell when the last one
	// goes (nil: not known, and a flush is then never assumed).
	v4addrs     map[int]map[string]bool
	rules       []detect.Rule
	routesStale bool
	rulesStale  bool
	// outerIndex is the outer interface of the last plan, followed by
	// index so that a rename does not lose it.
	outerIndex int
	// wg caches what each WireGuard device said, per link index: a tunnel
	// that comes back is a new link and is asked again.
	wg        map[string]wgEntry
	ztPayload int
}

// routeID is what detect.Route.Same compares: one entry in the kernel.
type routeID struct {
	family, table int
	dst, gw       string
	link, metric  int
}

func keyOf(r detect.Route) routeID {
	return routeID{family: r.Family, table: r.Table, dst: r.Dst, gw: r.Gw, link: r.LinkIndex, metric: r.Metric}
}

type wgEntry struct {
	index int
	dev   detect.WireGuardDevice
	ok    bool
}

func newModel(read detect.Netlink, src detect.Sources) *model {
	return &model{read: read, src: src, links: map[int]detect.Link{}, routes: map[routeID]detect.Route{},
		keep: map[int]bool{}, others: newOtherTables(), wg: map[string]wgEntry{}}
}

// readAll replaces the whole view with a fresh read.
func (m *model) readAll() error {
	links, err := m.read.Links()
	if err != nil {
		return err
	}
	routes, others := map[routeID]detect.Route{}, newOtherTables()
	err = m.eachRoute(nil, func() { clear(routes); others = newOtherTables() }, func(r detect.Route) {
		switch {
		case m.kept(r):
			r.Dev = ""
			routes[keyOf(r)] = r
		case !reserved(r.Table):
			others.add(r)
		}
	})
	if err != nil {
		return err
	}
	rules, err := m.read.Rules()
	if err != nil {
		return err
	}
	var v4addrs map[int]map[string]bool
	if m.dump != nil {
		v4addrs = map[int]map[string]bool{}
		err := m.dump.Addrs(func(a netwatch.Addr) {
			if a.Family == 4 {
				if v4addrs[a.LinkIndex] == nil {
					v4addrs[a.LinkIndex] = map[string]bool{}
				}
				v4addrs[a.LinkIndex][a.Prefix] = true
			}
		})
		if err != nil {
			v4addrs = nil // a flush is then never assumed: tables stay counted
		}
	}
	m.links = make(map[int]detect.Link, len(links))
	for _, l := range links {
		m.links[l.Index] = l
	}
	m.routes, m.others, m.rules, m.v4addrs = routes, others, rules, v4addrs
	m.routesStale, m.rulesStale = false, false
	m.wg = map[string]wgEntry{}
	m.ztPayload = detect.ZeroTierPayload(m.src.Root)
	return nil
}

// eachRoute reads the routes of tables (nil: every table) and hands each to
// fn; restart is called before a read is started again because the kernel
// said it was interrupted by a change.
func (m *model) eachRoute(tables []int, restart func(), fn func(detect.Route)) error {
	if m.dump == nil {
		routes, err := m.read.Routes()
		if err != nil {
			return err
		}
		for _, r := range routes {
			if tables == nil || slices.Contains(tables, r.Table) {
				fn(r)
			}
		}
		return nil
	}
	if tables == nil {
		tables = []int{0}
	}
	for attempt := 0; ; attempt++ {
		var err error
		for _, t := range tables {
			if err = m.dump.Routes(t, fn); err != nil {
				break
			}
		}
		// Under a burst every dump may be interrupted; the events queued
		// behind it bring the view up to date, and applying them twice is
		// harmless: every part of the view is a set.
		if !errors.Is(err, netwatch.ErrDumpInterrupted) {
			return err
		}
		if attempt == 2 {
			return nil
		}
		restart()
	}
}

// kept says whether a route is one the plans act on.
func (m *model) kept(r detect.Route) bool {
	return (r.Table == detect.MainTable && r.IsDefault()) || m.keep[r.Table]
}

// reserved tables are never free, so their routes need no counting: the
// kernel's unspec, default, main and local.
func reserved(table int) bool { return table == 0 || table >= 253 && table <= 255 }

// keepTable keeps a table in full from now on (wslmtu's own, named by the
// record or a plan); what was only counted of it is read.
func (m *model) keepTable(table int) {
	if table <= 0 || m.keep[table] {
		return
	}
	m.keep[table] = true
	if m.others.dropTable(table) {
		m.routesStale = true
	}
}

func (m *model) snapshot() detect.Snapshot {
	links := make([]detect.Link, 0, len(m.links))
	for _, l := range m.links {
		links = append(links, l)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Index < links[j].Index })
	routes := make([]detect.Route, 0, len(m.routes))
	for _, r := range m.routes {
		routes = append(routes, r)
	}
	// The kernel lists routes by table, family and destination; ties go by
	// metric, then gateway and link, so every plan sees one order.
	slices.SortFunc(routes, func(a, b detect.Route) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(a.Family, b.Family), cmp.Compare(a.Dst, b.Dst),
			cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Gw, b.Gw), cmp.Compare(a.LinkIndex, b.LinkIndex))
	})
	return detect.Snapshot{Links: links, Routes: routes, Rules: m.rules, OtherTables: m.others.tables()}
}

// through says whether a kept route goes through a link.
func (m *model) through(index int) bool {
	for k := range m.routes {
		if k.link == index {
			return true
		}
	}
	return false
}

// link applies an RTM_NEWLINK/RTM_DELLINK. A link that goes away takes
// every route through it along, and one that goes down its IPv4 routes
// (IPv6 ones go with an event each), without a route event: what is kept
// is read again, what is counted is dropped.
func (m *model) link(l detect.Link, gone bool) {
	old, had := m.links[l.Index]
	if gone {
		delete(m.links, l.Index)
		delete(m.wg, l.Name)
		delete(m.v4addrs, l.Index)
		m.others.dropLink(l.Index, 0)
		if m.through(l.Index) {
			m.routesStale = true
		}
		return
	}
	if had {
		l.IPv6Addrs = old.IPv6Addrs // link events do not carry addresses
		if old.Up != l.Up {
			if !l.Up {
				m.others.dropLink(l.Index, 4)
			}
			if m.through(l.Index) {
				m.routesStale = true
			}
			// A WireGuard device is configured while down (wg-quick sets
			// the port before `ip link set up`; wireguard-go's UAPI socket
			// appears after its tun): what it said then is not what it
			// says once up.
			delete(m.wg, l.Name)
		}
	}
	m.links[l.Index] = l
}

// addr applies an RTM_NEWADDR/RTM_DELADDR. Deleting a link's last IPv4
// address flushes every IPv4 route through it, in every table, and
// deleting any address the routes that used it as their source, all
// without a route event (WSL does this on every mirrored-mode refresh and
// consomme address change). It says whether kept routes may have gone.
func (m *model) addr(a netwatch.Addr, gone bool) bool {
	if a.Family != 4 {
		return false // IPv6 routes are never removed without an event
	}
	set, known := m.v4addrs[a.LinkIndex], m.v4addrs != nil
	if !gone {
		if known {
			if set == nil {
				set = map[string]bool{}
				m.v4addrs[a.LinkIndex] = set
			}
			set[a.Prefix] = true
		}
		return false
	}
	delete(set, a.Prefix)
	if known && len(set) == 0 {
		m.others.dropLink(a.LinkIndex, 4)
	}
	if m.through(a.LinkIndex) {
		m.routesStale = true
		return true
	}
	return false
}

// route applies an RTM_NEWROUTE/RTM_DELROUTE and says whether it changed a
// route the plans act on. An event that repeats what the view holds (the
// echo of the agent's own write) changes nothing.
func (m *model) route(r detect.Route, gone bool) bool {
	if !m.kept(r) {
		if !reserved(r.Table) {
			if gone {
				m.others.remove(r)
			} else {
				m.others.add(r)
			}
		}
		return false
	}
	r.Dev = ""
	k := keyOf(r)
	have, had := m.routes[k]
	if gone {
		delete(m.routes, k)
		return had
	}
	m.routes[k] = r
	return !had || have != r
}

func (m *model) rulesChanged() { m.rulesStale = true }

// derive re-reads what is stale and derives the state.
func (m *model) derive(env detect.Environment, cfg config.Config) (detect.State, error) {
	if m.routesStale {
		if err := m.readKept(); err != nil {
			return detect.State{}, err
		}
	}
	if m.rulesStale {
		rules, err := m.read.Rules()
		if err != nil {
			return detect.State{}, err
		}
		m.rules, m.rulesStale = rules, false
	}
	return detect.Derive(detect.Inputs{Env: env, Snapshot: m.snapshot(), WireGuard: m.wireGuard, ZeroTierPayload: m.ztPayload}, cfg)
}

// readKept reads the kept routes again: the main table and each kept one,
// each a dump the kernel filters, so it costs the same whatever else the
// host holds.
func (m *model) readKept() error {
	tables := []int{detect.MainTable}
	for t := range m.keep {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	routes := map[routeID]detect.Route{}
	err := m.eachRoute(tables, func() { clear(routes) }, func(r detect.Route) {
		if m.kept(r) {
			r.Dev = ""
			routes[keyOf(r)] = r
		}
	})
	if err != nil {
		return err
	}
	m.routes, m.routesStale = routes, false
	return nil
}

// wireGuard asks a device once per link (wgctrl costs a socket round trip).
func (m *model) wireGuard(name string) (detect.WireGuardDevice, bool) {
	index := 0
	for _, l := range m.links {
		if l.Name == name {
			index = l.Index
		}
	}
	if e, ok := m.wg[name]; ok && e.index == index {
		return e.dev, e.ok
	}
	var e wgEntry
	e.index = index
	if m.src.WireGuard != nil {
		e.dev, e.ok = m.src.WireGuard(name)
	}
	m.wg[name] = e
	return e.dev, e.ok
}

// applied records the agent's own writes at once, so the next plan sees
// them even before their events arrive, and their echoes change nothing.
func (m *model) applied(changes []fix.Change) {
	for _, c := range changes {
		switch {
		case c.Route != nil:
			switch c.Route.Op {
			case fix.RouteSetMTU:
				r := c.Route.Route
				r.MTU = c.Route.To
				m.route(r, false)
			case fix.RouteAdd:
				m.route(c.Route.Route, false)
			case fix.RouteDelete:
				m.route(c.Route.Route, true)
			}
		case c.Rule != nil:
			if c.Rule.Add {
				m.rules = append(m.rules, c.Rule.Rule)
			} else {
				m.rules = slices.DeleteFunc(m.rules, func(r detect.Rule) bool { return r == c.Rule.Rule })
			}
		case c.Wrote:
			for idx, l := range m.links {
				if (c.Index != 0 && idx == c.Index) || (c.Index == 0 && l.Name == c.Link) {
					l.MTU = c.To
					m.links[idx] = l
				}
			}
		}
	}
}

// otherTables are the routes of tables the plans do not act on, as hashes
// grouped by where the kernel may flush them from at once.
type otherTables struct {
	seed     maphash.Seed
	routes   map[tableUse]map[uint64]struct{}
	perTable map[int]int
	list     []int // the tables in use, sorted; nil when it must be rebuilt
}

type tableUse struct{ table, family, link int }

func newOtherTables() otherTables {
	return otherTables{seed: maphash.MakeSeed(), routes: map[tableUse]map[uint64]struct{}{}, perTable: map[int]int{}}
}

func (o *otherTables) hash(r detect.Route) (tableUse, uint64) {
	return tableUse{r.Table, r.Family, r.LinkIndex}, maphash.Comparable(o.seed, keyOf(r))
}

func (o *otherTables) add(r detect.Route) {
	u, h := o.hash(r)
	set := o.routes[u]
	if set == nil {
		set = map[uint64]struct{}{}
		o.routes[u] = set
	}
	if _, ok := set[h]; ok {
		return
	}
	set[h] = struct{}{}
	if o.perTable[u.table]++; o.perTable[u.table] == 1 {
		o.list = nil
	}
}

func (o *otherTables) remove(r detect.Route) {
	u, h := o.hash(r)
	set := o.routes[u]
	if _, ok := set[h]; !ok {
		return
	}
	delete(set, h)
	if len(set) == 0 {
		delete(o.routes, u)
	}
	o.less(u.table, 1)
}

func (o *otherTables) less(table, n int) {
	if o.perTable[table] -= n; o.perTable[table] <= 0 {
		delete(o.perTable, table)
		o.list = nil
	}
}

// dropLink forgets the routes through a link (family 0: both).
func (o *otherTables) dropLink(link, family int) {
	for u, set := range o.routes {
		if u.link == link && (family == 0 || u.family == family) {
			delete(o.routes, u)
			o.less(u.table, len(set))
		}
	}
}

// dropTable forgets a table's routes, and says whether it had any.
func (o *otherTables) dropTable(table int) bool {
	if o.perTable[table] == 0 {
		return false
	}
	for u := range o.routes {
		if u.table == table {
			delete(o.routes, u)
		}
	}
	delete(o.perTable, table)
	o.list = nil
	return true
}

// tables lists the tables in use. The list is shared until the set of
// tables changes.
func (o *otherTables) tables() []int {
	if o.list == nil {
		o.list = make([]int, 0, len(o.perTable))
		for t := range o.perTable {
			o.list = append(o.list, t)
		}
		slices.Sort(o.list)
	}
	return o.list
}

// recordCache keeps the revert record parsed while its file is unchanged:
// a repair then costs one stat instead of a read and a JSON decode. Another
// wslmtu (a fix run) replaces the file, which changes its inode.
type recordCache struct {
	store fix.Store
	rec   fix.Record
	stamp fileStamp
	valid bool
}

type fileStamp struct {
	ino, size int64
	mtime     time.Time
	exists    bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime(), exists: true}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = int64(st.Ino)
	}
	return s
}

func (c *recordCache) load() (fix.Record, error) {
	stamp := stampOf(c.store.RecordPath())
	if c.valid && stamp == c.stamp {
		return c.rec, nil
	}
	rec, _, err := c.store.LoadRecord()
	if err != nil {
		c.valid = false
		return rec, err
	}
	c.rec, c.stamp, c.valid = rec, stamp, true
	return rec, nil
}

// set takes the record Apply returned (and may have saved).
func (c *recordCache) set(rec fix.Record) {
	c.rec, c.stamp, c.valid = rec, stampOf(c.store.RecordPath()), true
}
