package fix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/statefile"
)

// RecordVersion is the revert record's format: 2 keeps, per interface and
// route, the value before wslmtu changed it and the value it wrote.
const RecordVersion = 2

// Record is what wslmtu changed, written before each first change so a
// crash still leaves a revertable host. A value is wslmtu's only while the
// kernel still holds what wslmtu wrote: someone else's later value is
// theirs, revert leaves it alone, and plans start from it.
type Record struct {
	Version int `json:"version"`
	// BootID is the boot of the kernel the record's values were written
	// to; a record from another boot describes a kernel that is gone.
	BootID string                `json:"boot_id,omitempty"`
	Links  map[string]LinkRecord `json:"links"`
	Routes []RouteRecord         `json:"routes,omitempty"`
	// Policy is the tunnel scope's rules and table, when wslmtu added them.
	Policy *PolicyRecord `json:"policy,omitempty"`
	// MSS is set once wslmtu has created its chains, before it does.
	MSS *MSSRecord `json:"mss,omitempty"`
}

// LinkRecord is one interface's MTU before wslmtu changed it and the MTU it
// wrote. Wrote is 0 for a record migrated from version 1, which did not
// keep it: such a value is treated as still wslmtu's.
type LinkRecord struct {
	Before int `json:"before"`
	Wrote  int `json:"wrote"`
	// SetBy names who set Wrote when it was not wslmtu: "tailscaled" for
	// its own WSL fix, taken over so revert puts back what Windows chose.
	SetBy string `json:"set_by,omitempty"`
}

// RouteRecord is one route's own MTU before wslmtu gave it one (0: none)
// and the MTU wslmtu wrote.
type RouteRecord struct {
	Route  detect.Route `json:"route"`
	Before int          `json:"before"`
	Wrote  int          `json:"wrote"`
}

// PolicyRecord is what the tunnel scope added: rules and the routes of a
// table of its own. Revert deletes exactly these.
type PolicyRecord struct {
	Table  int            `json:"table"`
	Rules  []detect.Rule  `json:"rules"`
	Routes []detect.Route `json:"routes"`
}

// FromOtherBoot says whether the record was written under another boot of
// the kernel than bootID (both known): its values are not this kernel's.
func (r Record) FromOtherBoot(bootID string) bool {
	return r.BootID != "" && bootID != "" && r.BootID != bootID
}

// Empty says whether the record holds nothing to revert.
func (r Record) Empty() bool {
	return len(r.Links) == 0 && len(r.Routes) == 0 && (r.Policy == nil || len(r.Policy.Rules)+len(r.Policy.Routes) == 0) && r.MSS == nil
}

func newRecord() Record { return Record{Version: RecordVersion, Links: map[string]LinkRecord{}} }

// Store is the state directory.
type Store struct{ Dir string }

// RecordPath is where the revert record lives.
func (s Store) RecordPath() string { return filepath.Join(s.Dir, "revert.json") }

// ErrNoRecord marks a state directory without a revert record.
var ErrNoRecord = errors.New("no revert record")

// DamagedError is a revert record that cannot be trusted: revert and fix
// refuse to act on it rather than guess.
type DamagedError struct {
	Path, Why string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("the revert record %s is damaged: %s; check the MTUs (`wslmtu status`), then move it aside (sudo mv %s %s.bad)",
		e.Path, e.Why, e.Path, e.Path)
}

// LoadRecord reads the record; a missing one is an empty record and found
// is false. A record of an unknown version, or one that is not an object
// with a version and its fields, is a *DamagedError.
func (s Store) LoadRecord() (rec Record, found bool, err error) {
	path := s.RecordPath()
	data, err := statefile.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newRecord(), false, nil
	}
	if err != nil {
		return newRecord(), true, &DamagedError{Path: path, Why: err.Error()}
	}
	rec, err = parseRecord(data)
	if err != nil {
		return newRecord(), true, &DamagedError{Path: path, Why: err.Error()}
	}
	return rec, true, nil
}

// parseRecord accepts version 2 and migrates version 1 ({"version": 1,
// "original_mtu": {…}, "mss": …}).
func parseRecord(data []byte) (Record, error) {
	var head struct {
		Version *int `json:"version"`
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Record{}, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Record{}, err
	}
	switch {
	case head.Version == nil:
		return Record{}, errors.New("it has no version")
	case *head.Version == 1:
		var v1 struct {
			MTU map[string]int `json:"original_mtu"`
			MSS *MSSRecord     `json:"mss"`
		}
		if err := strictUnmarshal(data, &v1, "version"); err != nil {
			return Record{}, err
		}
		if v1.MTU == nil {
			return Record{}, errors.New(`version 1 without "original_mtu"`)
		}
		rec := newRecord()
		rec.MSS = v1.MSS
		for name, mtu := range v1.MTU {
			if mtu < 68 {
				return Record{}, fmt.Errorf("%s: mtu %d is impossible", name, mtu)
			}
			rec.Links[name] = LinkRecord{Before: mtu}
		}
		return rec, nil
	case *head.Version == RecordVersion:
		rec := newRecord()
		var v2 struct {
			Version int                   `json:"version"`
			BootID  string                `json:"boot_id"`
			Links   map[string]LinkRecord `json:"links"`
			Routes  []RouteRecord         `json:"routes"`
			Policy  *PolicyRecord         `json:"policy"`
			MSS     *MSSRecord            `json:"mss"`
		}
		if err := strictUnmarshal(data, &v2); err != nil {
			return Record{}, err
		}
		if v2.Links == nil {
			return Record{}, errors.New(`version 2 without "links"`)
		}
		for name, l := range v2.Links {
			if l.Before < 68 || (l.Wrote != 0 && l.Wrote < 68) {
				return Record{}, fmt.Errorf("%s: mtu %d → %d is impossible", name, l.Before, l.Wrote)
			}
		}
		rec.Links, rec.Routes, rec.Policy, rec.MSS, rec.BootID = v2.Links, v2.Routes, v2.Policy, v2.MSS, v2.BootID
		return rec, nil
	case *head.Version > RecordVersion:
		return Record{}, fmt.Errorf("version %d was written by a newer wslmtu (this one reads up to %d)", *head.Version, RecordVersion)
	}
	return Record{}, fmt.Errorf("version %d is unknown", *head.Version)
}

// strictUnmarshal refuses unknown fields (besides those named), so a record
// of another shape is never half-read.
func strictUnmarshal(data []byte, v any, ignore ...string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	for _, k := range ignore {
		delete(fields, k)
	}
	clean, _ := json.Marshal(fields)
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// SaveRecord writes the record atomically; an empty record removes the
// file's content but keeps a record that says so.
func (s Store) SaveRecord(rec Record) error {
	rec.Version = RecordVersion
	if rec.Links == nil {
		rec.Links = map[string]LinkRecord{}
	}
	return statefile.WriteJSON(s.RecordPath(), rec)
}

// Lock serializes wslmtu processes that change links, routes and rules.
// onWait is told who holds it when it is busy; nil waits silently.
func (s Store) Lock(onWait func(holder string)) (*statefile.Lock, error) {
	return statefile.Acquire(s.Dir, statefile.LinksLock, 0, onWait)
}

// linkNames lists the record's interfaces in order.
func (r Record) linkNames() []string {
	names := make([]string, 0, len(r.Links))
	for name := range r.Links {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// ours says whether a value the kernel holds now is still the one wslmtu
// wrote (a migrated record did not keep it: then it is taken as ours).
func ours(current, wrote int) bool { return wrote == 0 || current == wrote }

// baseline is what the kernel would hold without wslmtu: the value before
// wslmtu changed it while wslmtu's value is still there, else the current
// value, which somebody else (WSL, tailscaled, the user) set since.
func baseline(current int, rec LinkRecord, known bool) int {
	if known && ours(current, rec.Wrote) {
		return rec.Before
	}
	return current
}

// routeRecord finds the record of a route.
func (r Record) routeRecord(route detect.Route) (RouteRecord, bool) {
	for _, rr := range r.Routes {
		if rr.Route.Same(route) {
			return rr, true
		}
	}
	return RouteRecord{}, false
}

// Baseline is the observation as it would be without wslmtu's changes:
// each recorded interface and route at its value before wslmtu changed it,
// where the kernel still holds wslmtu's value. Plans are made from it, so
// no plan ever feeds on its own output: planning twice, or after a config
// change, gives targets from the same starting point.
func Baseline(st detect.State, rec Record) detect.State {
	base := st
	base.Links = make([]detect.Link, len(st.Links))
	for i, l := range st.Links {
		r, known := rec.Links[l.Name]
		l.MTU = baseline(l.MTU, r, known)
		base.Links[i] = l
	}
	atBaseline := func(l *detect.Link) *detect.Link {
		if l == nil {
			return nil
		}
		c := *l
		r, known := rec.Links[c.Name]
		c.MTU = baseline(c.MTU, r, known)
		return &c
	}
	base.Outer = atBaseline(st.Outer)
	base.Tunnels = make([]detect.Link, len(st.Tunnels))
	for i := range st.Tunnels {
		base.Tunnels[i] = *atBaseline(&st.Tunnels[i])
	}
	base.Routes = make([]detect.Route, 0, len(st.Routes))
	for _, route := range st.Routes {
		if rec.Policy != nil && route.Table == rec.Policy.Table && rec.Policy.Table != 0 {
			continue // our own table does not exist without wslmtu
		}
		if rr, ok := rec.routeRecord(route); ok && ours(route.MTU, rr.Wrote) {
			route.MTU = rr.Before
		}
		base.Routes = append(base.Routes, route)
	}
	base.Rules = make([]detect.Rule, 0, len(st.Rules))
	for _, rule := range st.Rules {
		if rec.Policy != nil && containsRule(rec.Policy.Rules, rule) {
			continue
		}
		base.Rules = append(base.Rules, rule)
	}
	return base
}

func containsRule(rules []detect.Rule, r detect.Rule) bool {
	for _, have := range rules {
		if have == r {
			return true
		}
	}
	return false
}

func containsRoute(routes []detect.Route, r detect.Route) bool {
	for _, have := range routes {
		if have.Same(r) {
			return true
		}
	}
	return false
}
