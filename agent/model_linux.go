package agent

import (
	"os"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
)

// model is the agent's view of the kernel: read in full at start and after
// a failed subscription, then kept current from events, so a repair plans
// from memory instead of dumping links and routes first. Parts an event
// cannot describe (which rules changed, the routes a downed link took with
// it) are marked stale and read again before the next plan.
type model struct {
	read        detect.Netlink
	src         detect.Sources
	links       map[int]detect.Link
	routes      []detect.Route
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

type wgEntry struct {
	index int
	dev   detect.WireGuardDevice
	ok    bool
}

func newModel(read detect.Netlink, src detect.Sources) *model {
	return &model{read: read, src: src, links: map[int]detect.Link{}, wg: map[string]wgEntry{}}
}

// readAll replaces the whole view with a fresh read.
func (m *model) readAll() error {
	snap, err := detect.Read(m.read)
	if err != nil {
		return err
	}
	m.links = make(map[int]detect.Link, len(snap.Links))
	for _, l := range snap.Links {
		m.links[l.Index] = l
	}
	m.routes, m.rules = snap.Routes, snap.Rules
	m.routesStale, m.rulesStale = false, false
	m.wg = map[string]wgEntry{}
	m.ztPayload = detect.ZeroTierPayload(m.src.Root)
	return nil
}

func (m *model) snapshot() detect.Snapshot {
	links := make([]detect.Link, 0, len(m.links))
	for _, l := range m.links {
		links = append(links, l)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Index < links[j].Index })
	return detect.Snapshot{Links: links, Routes: m.routes, Rules: m.rules}
}

// link applies an RTM_NEWLINK/RTM_DELLINK. A link that goes away or down
// takes its routes with it without a route event, so routes are re-read.
func (m *model) link(l detect.Link, gone bool) {
	old, had := m.links[l.Index]
	if gone {
		delete(m.links, l.Index)
		delete(m.wg, l.Name)
		m.routesStale = true
		return
	}
	if had {
		l.IPv6Addrs = old.IPv6Addrs // link events do not carry addresses
		if old.Up != l.Up {
			m.routesStale = true
			// A WireGuard device is configured while down (wg-quick sets
			// the port before `ip link set up`; wireguard-go's UAPI socket
			// appears after its tun): what it said then is not what it
			// says once up.
			delete(m.wg, l.Name)
		}
	}
	m.links[l.Index] = l
}

// route applies an RTM_NEWROUTE/RTM_DELROUTE and says whether it can matter
// to a plan: a default route of any table (the main one, or ours).
func (m *model) route(r detect.Route, gone bool) bool {
	i := slices.IndexFunc(m.routes, func(have detect.Route) bool { return have.Same(r) })
	switch {
	case gone && i >= 0:
		m.routes = slices.Delete(m.routes, i, i+1)
	case gone:
	case i >= 0:
		m.routes[i] = r
	default:
		m.routes = append(m.routes, r)
	}
	return r.IsDefault()
}

func (m *model) rulesChanged() { m.rulesStale = true }

// derive re-reads what is stale and derives the state.
func (m *model) derive(env detect.Environment, cfg config.Config) (detect.State, error) {
	if m.routesStale {
		routes, err := m.read.Routes()
		if err != nil {
			return detect.State{}, err
		}
		m.routes, m.routesStale = routes, false
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
// them even before their events arrive.
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
