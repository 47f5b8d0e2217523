package fix

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"syscall"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// Kernel is what the appliers change: MTUs, routes' MTUs, the routes of
// wslmtu's own table and its policy rules. NetlinkKernel is the real one;
// internal/testenv/fakekernel records calls for tests.
type Kernel interface {
	// SetMTU sets a link's MTU (by index when known, else by name).
	SetMTU(l detect.Link, mtu int) error
	// SetRouteMTU gives the route that is the same as r (detect.Route.Same)
	// an MTU, 0 for none, and changes nothing else about it.
	SetRouteMTU(r detect.Route, mtu int) error
	AddRoute(r detect.Route) error
	DeleteRoute(r detect.Route) error
	AddRule(r detect.Rule) error
	DeleteRule(r detect.Rule) error
}

// Change is one step of a plan as applied: an MTU change (Action), a route
// change or a rule change, with what the kernel held before.
type Change struct {
	Action
	Route *RouteAction `json:"route,omitempty"`
	Rule  *RuleAction  `json:"rule,omitempty"`
	Found int          `json:"found"` // the MTU read just before writing
	Wrote bool         `json:"wrote"`
}

func (c Change) String() string {
	switch {
	case c.Route != nil:
		return c.Route.String()
	case c.Rule != nil:
		return c.Rule.String()
	case !c.Wrote:
		return fmt.Sprintf("%s: mtu already %d", c.Link, c.Found)
	}
	return fmt.Sprintf("%s: mtu %d → %d (%s)", c.Link, c.Found, c.To, c.Reason)
}

// ApplyError is a plan that failed part-way: Done were made, Pending were
// not (Pending[0] is the one that failed).
type ApplyError struct {
	Pending []string
	Err     error
}

func (e *ApplyError) Error() string { return fmt.Sprintf("%s: %v", e.Pending[0], e.Err) }
func (e *ApplyError) Unwrap() error { return e.Err }

// Apply carries out a plan made from rec, in the order Plan.Changes lists.
// It writes only what differs, because every write emits a netlink event
// and would wake the agent again, and reads nothing back: on the agent's
// repair path every round trip counts. The record is saved before each
// first change of an interface, route or rule (a crash between the two
// still leaves a revertable host); updates of what is recorded already
// follow the writes, so a repair of a known value costs no disk write.
// It returns the record as it now is.
func Apply(p Plan, rec Record, k Kernel, store Store) (Record, []Change, error) {
	if p.Refused != "" {
		return rec, nil, nil
	}
	rec = cloneRecord(rec)
	dirty := false
	if p.StaleRecord != "" {
		rec, dirty = newRecord(), true
	}
	if p.BootID != "" && rec.BootID != p.BootID {
		rec.BootID, dirty = p.BootID, true
	}
	for name, lr := range p.Adopt {
		rec.Links[name], dirty = lr, true
	}
	save := func() error {
		if err := store.SaveRecord(rec); err != nil {
			return fmt.Errorf("saving the revert record: %w", err)
		}
		dirty = false
		return nil
	}
	for _, name := range p.Forget {
		delete(rec.Links, name)
		dirty = true
	}
	for _, r := range p.ForgetRoutes {
		rec.Routes = slices.DeleteFunc(rec.Routes, func(rr RouteRecord) bool { return rr.Route.Same(r) })
		dirty = true
	}
	var changes []Change
	steps := p.steps()
	fail := func(i int, err error) (Record, []Change, error) {
		pending := make([]string, 0, len(steps)-i)
		for _, s := range steps[i:] {
			pending = append(pending, s.String())
		}
		if dirty {
			err = errors.Join(err, save())
		}
		return rec, changes, &ApplyError{Pending: pending, Err: err}
	}
	// Policy first in the record: everything it will add, before adding.
	// Putting back what the record holds already (a flushed table, a
	// deleted rule) costs no disk write. A record that cannot be saved (a
	// full disk) leaves every step not done, and says so.
	if added := policyAdditions(p); len(added.Rules)+len(added.Routes) > 0 {
		merged := mergePolicy(rec.Policy, added)
		if rec.Policy == nil || merged.Table != rec.Policy.Table ||
			!slices.Equal(merged.Rules, rec.Policy.Rules) || !slices.Equal(merged.Routes, rec.Policy.Routes) {
			rec.Policy = merged
			if err := save(); err != nil {
				dirty = false // it just failed: no second try
				return fail(0, err)
			}
		}
	}
	for i, s := range steps {
		switch a := s.(type) {
		case Action:
			if a.To < tunnel.MinIPv4MTU {
				return fail(i, fmt.Errorf("refusing mtu %d: below %d the kernel drops IPv4", a.To, tunnel.MinIPv4MTU))
			}
			r, known := rec.Links[a.Link]
			restoring := known && a.To == r.Before && ours(a.From, r.Wrote)
			switch {
			case restoring:
				// Putting back what was there: the entry goes after the write.
			case !known:
				rec.Links[a.Link] = LinkRecord{Before: a.From, Wrote: a.To}
				if err := save(); err != nil {
					return fail(i, err)
				}
			default:
				updated := r
				if !ours(a.From, r.Wrote) {
					updated.Before = a.From // somebody else's value since: that is what revert restores
				}
				updated.Wrote = a.To
				if updated != r {
					rec.Links[a.Link] = updated
					dirty = true
				}
			}
			if err := k.SetMTU(detect.Link{Name: a.Link, Index: a.Index}, a.To); err != nil {
				return fail(i, fmt.Errorf("%s: setting mtu %d: %w", a.Link, a.To, err))
			}
			if restoring {
				delete(rec.Links, a.Link)
				dirty = true
			}
			changes = append(changes, Change{Action: a, Found: a.From, Wrote: true})
		case RouteAction:
			if err := applyRoute(&rec, a, k, save, &dirty); err != nil {
				return fail(i, err)
			}
			changes = append(changes, Change{Route: &a, Wrote: true})
		case RuleAction:
			var err error
			if a.Add {
				err = k.AddRule(a.Rule)
			} else {
				err = k.DeleteRule(a.Rule)
			}
			if err != nil {
				return fail(i, fmt.Errorf("%s rule %s: %w", detect.Tool(a.Rule.Family), a.Rule, err))
			}
			if !a.Add && rec.Policy != nil {
				rec.Policy.Rules = slices.DeleteFunc(rec.Policy.Rules, func(r detect.Rule) bool { return r == a.Rule })
				dirty = true
			}
			changes = append(changes, Change{Rule: &a, Wrote: true})
		}
	}
	if rec.Policy != nil && len(rec.Policy.Rules)+len(rec.Policy.Routes) == 0 {
		rec.Policy = nil
		dirty = true
	}
	if dirty {
		if err := save(); err != nil {
			return rec, changes, err
		}
	}
	return rec, changes, nil
}

func applyRoute(rec *Record, a RouteAction, k Kernel, save func() error, dirty *bool) error {
	switch a.Op {
	case RouteAdd:
		if err := k.AddRoute(a.Route); err != nil {
			return fmt.Errorf("adding route %s: %w", a.Route, err)
		}
	case RouteDelete:
		// Gone already is what a delete wants: deleting an address flushes
		// the routes through it without a word (no RTM_DELROUTE).
		if err := k.DeleteRoute(a.Route); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("deleting route %s: %w", a.Route, err)
		}
		if rec.Policy != nil {
			rec.Policy.Routes = slices.DeleteFunc(rec.Policy.Routes, func(r detect.Route) bool { return r.Same(a.Route) })
			*dirty = true
		}
	case RouteSetMTU:
		key := a.Route
		key.MTU = 0
		rr, known := rec.routeRecord(key)
		restoring := known && a.To == rr.Before && ours(a.From, rr.Wrote)
		switch {
		case restoring:
		case !known:
			rec.Routes = append(rec.Routes, RouteRecord{Route: key, Before: a.From, Wrote: a.To})
			if err := save(); err != nil {
				return err
			}
		default:
			updated := rr
			if !ours(a.From, rr.Wrote) {
				updated.Before = a.From
			}
			updated.Wrote = a.To
			if updated != rr {
				setRouteRecord(rec, updated)
				*dirty = true
			}
		}
		if err := k.SetRouteMTU(a.Route, a.To); err != nil {
			return fmt.Errorf("route %s: setting mtu %d: %w", key, a.To, err)
		}
		if restoring {
			rec.Routes = slices.DeleteFunc(rec.Routes, func(r RouteRecord) bool { return r.Route.Same(key) })
			*dirty = true
		}
	}
	return nil
}

func setRouteRecord(rec *Record, rr RouteRecord) {
	for i := range rec.Routes {
		if rec.Routes[i].Route.Same(rr.Route) {
			rec.Routes[i] = rr
			return
		}
	}
	rec.Routes = append(rec.Routes, rr)
}

// policyAdditions is what a plan adds to the kernel's rules and routes.
func policyAdditions(p Plan) PolicyRecord {
	var added PolicyRecord
	if p.Policy != nil {
		added.Table = p.Policy.Table
	}
	for _, r := range p.Rules {
		if r.Add {
			added.Rules = append(added.Rules, r.Rule)
		}
	}
	for _, r := range p.Routes {
		if r.Op == RouteAdd {
			added.Routes = append(added.Routes, r.Route)
		}
	}
	return added
}

func mergePolicy(have *PolicyRecord, add PolicyRecord) *PolicyRecord {
	out := &PolicyRecord{Table: add.Table}
	if have != nil {
		out.Rules = slices.Clone(have.Rules)
		out.Routes = slices.Clone(have.Routes)
		if out.Table == 0 {
			out.Table = have.Table
		}
	}
	for _, r := range add.Rules {
		if !containsRule(out.Rules, r) {
			out.Rules = append(out.Rules, r)
		}
	}
	for _, r := range add.Routes {
		if !containsRoute(out.Routes, r) {
			out.Routes = append(out.Routes, r)
		}
	}
	return out
}

func cloneRecord(r Record) Record {
	out := r
	out.Links = make(map[string]LinkRecord, len(r.Links))
	for k, v := range r.Links {
		out.Links[k] = v
	}
	out.Routes = slices.Clone(r.Routes)
	if r.Policy != nil {
		pol := *r.Policy
		pol.Rules = slices.Clone(pol.Rules)
		pol.Routes = slices.Clone(pol.Routes)
		out.Policy = &pol
	}
	return out
}

// Reverted is one thing put back (or left alone) by Host.Revert.
type Reverted struct {
	Link      string `json:"interface,omitempty"`
	From      int    `json:"from,omitempty"`
	To        int    `json:"to,omitempty"`
	Gone      bool   `json:"gone,omitempty"`
	Unchanged bool   `json:"unchanged,omitempty"`
	// NotOurs: the kernel holds a value somebody else set since wslmtu
	// wrote its own (Wrote), so it is left alone.
	NotOurs bool `json:"not_ours,omitempty"`
	Wrote   int  `json:"wrote,omitempty"`
	// Text describes a route, rule or firewall change instead of an MTU.
	Text string `json:"change,omitempty"`
	// MSS describes a firewall change instead of an MTU.
	MSS string `json:"mss,omitempty"`
}

func (r Reverted) String() string {
	switch {
	case r.MSS != "":
		return r.MSS
	case r.Text != "":
		return r.Text
	case r.Gone:
		return fmt.Sprintf("%s: no longer exists; its original mtu %d is forgotten", r.Link, r.To)
	case r.NotOurs:
		return fmt.Sprintf("%s: mtu %d is not the %d wslmtu wrote: left alone (somebody changed it since; it was %d before wslmtu)",
			r.Link, r.From, r.Wrote, r.To)
	case r.Unchanged:
		return fmt.Sprintf("%s: mtu already %d", r.Link, r.To)
	}
	line := fmt.Sprintf("%s: mtu %d → %d (the value before wslmtu changed it)", r.Link, r.From, r.To)
	if r.From < tunnel.MinIPv6MTU && r.To >= tunnel.MinIPv6MTU {
		line += fmt.Sprintf("; below %d it lost its IPv6 addresses, which do not come back by themselves: "+
			"reconnect the tunnel (e.g. sudo tailscale down && sudo tailscale up)", tunnel.MinIPv6MTU)
	}
	return line
}

// revertKernel puts back what the record lists and still holds wslmtu's values:
// interfaces first (so nothing is raised once the route MTUs are gone),
// then route MTUs, then the routes of our table and our rules. A value
// somebody else changed since is left alone, and said so. The record is
// saved after each step, so an interrupted revert can be run again.
func revertKernel(st detect.State, rec Record, k Kernel, store Store) ([]Reverted, error) {
	rec = cloneRecord(rec)
	var done []Reverted
	save := func() error {
		if err := store.SaveRecord(rec); err != nil {
			return fmt.Errorf("saving the revert record: %w", err)
		}
		return nil
	}
	for _, name := range rec.linkNames() {
		r := rec.Links[name]
		l := st.Link(name)
		out := Reverted{Link: name, To: r.Before, Wrote: r.Wrote}
		switch {
		case l == nil:
			out.Gone = true
		case !ours(l.MTU, r.Wrote):
			out.From, out.NotOurs = l.MTU, true
		case l.MTU == r.Before:
			out.From, out.Unchanged = l.MTU, true
		default:
			out.From = l.MTU
			if err := k.SetMTU(*l, r.Before); err != nil {
				return done, fmt.Errorf("%s: setting mtu %d: %w", name, r.Before, err)
			}
		}
		delete(rec.Links, name)
		if err := save(); err != nil {
			return done, err
		}
		done = append(done, out)
	}
	for _, rr := range slices.Clone(rec.Routes) {
		cur, ok := findRoute(st.Routes, rr.Route)
		text := ""
		switch {
		case !ok:
			text = fmt.Sprintf("route %s: no longer exists", rr.Route)
		case !ours(cur.MTU, rr.Wrote):
			text = fmt.Sprintf("route %s: mtu %d is not the %d wslmtu wrote: left alone", rr.Route, cur.MTU, rr.Wrote)
		case cur.MTU == rr.Before:
			text = fmt.Sprintf("route %s: mtu already as before", rr.Route)
		default:
			if err := k.SetRouteMTU(cur, rr.Before); err != nil {
				return done, fmt.Errorf("route %s: putting back its mtu: %w", rr.Route, err)
			}
			text = RouteAction{Op: RouteSetMTU, Route: cur, From: cur.MTU, To: rr.Before, Reason: "the value before wslmtu changed it"}.String()
		}
		rec.Routes = slices.DeleteFunc(rec.Routes, func(r RouteRecord) bool { return r.Route.Same(rr.Route) })
		if err := save(); err != nil {
			return done, err
		}
		done = append(done, Reverted{Text: text})
	}
	if pol := rec.Policy; pol != nil {
		for _, r := range slices.Clone(pol.Routes) {
			if containsRoute(st.Routes, r) {
				if err := k.DeleteRoute(r); err != nil {
					return done, fmt.Errorf("deleting route %s: %w", r, err)
				}
				done = append(done, Reverted{Text: RouteAction{Op: RouteDelete, Route: r, Reason: "wslmtu added it"}.String()})
			}
			pol.Routes = slices.DeleteFunc(pol.Routes, func(have detect.Route) bool { return have.Same(r) })
			if err := save(); err != nil {
				return done, err
			}
		}
		rules := slices.Clone(pol.Rules)
		sort.SliceStable(rules, func(i, j int) bool { return rules[i].Priority > rules[j].Priority })
		for _, r := range rules {
			if containsRule(st.Rules, r) {
				if err := k.DeleteRule(r); err != nil {
					return done, fmt.Errorf("%s rule %s: %w", detect.Tool(r.Family), r, err)
				}
				done = append(done, Reverted{Text: RuleAction{Rule: r, Reason: "wslmtu added it"}.String()})
			}
			pol.Rules = slices.DeleteFunc(pol.Rules, func(have detect.Rule) bool { return have == r })
			if err := save(); err != nil {
				return done, err
			}
		}
		rec.Policy = nil
		if err := save(); err != nil {
			return done, err
		}
	}
	return done, nil
}

func findRoute(routes []detect.Route, r detect.Route) (detect.Route, bool) {
	for _, have := range routes {
		if have.Same(r) {
			return have, true
		}
	}
	return detect.Route{}, false
}
