package fix

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/statefile"
)

// MTUSetter is the part of the kernel the MTU applier needs.
type MTUSetter interface {
	MTU(link string) (int, error)
	SetMTU(link string, mtu int) error
}

// Record remembers each interface's MTU before wslmtu first changed it, so
// revert can put it back even after many repairs.
type Record struct {
	Version int            `json:"version"`
	MTU     map[string]int `json:"original_mtu"`
	// MSS is set once wslmtu has created its chains, before it does.
	MSS *MSSRecord `json:"mss,omitempty"`
}

// Store is the state directory.
type Store struct{ Dir string }

func (s Store) recordPath() string { return filepath.Join(s.Dir, "revert.json") }

func (s Store) LoadRecord() (Record, error) {
	rec := Record{Version: 1, MTU: map[string]int{}}
	_, err := statefile.ReadJSON(s.recordPath(), &rec)
	if rec.MTU == nil {
		rec.MTU = map[string]int{}
	}
	return rec, err
}

func (s Store) SaveRecord(rec Record) error { return statefile.WriteJSON(s.recordPath(), rec) }

// Lock serializes wslmtu processes that change the host.
func (s Store) Lock() (*statefile.Lock, error) {
	return statefile.Acquire(s.Dir, statefile.LinksLock, 0, nil)
}

// Change is one applied action with what the kernel had just before.
type Change struct {
	Action
	Found int  `json:"found"` // the MTU read just before writing
	Wrote bool `json:"wrote"`
}

func (c Change) String() string {
	if !c.Wrote {
		return fmt.Sprintf("%s: mtu already %d", c.Link, c.Found)
	}
	return fmt.Sprintf("%s: mtu %d → %d (%s)", c.Link, c.Found, c.To, c.Reason)
}

// Apply carries out the MTU actions. It writes only when the value differs,
// because every write emits RTM_NEWLINK and would wake the agent again. The
// plan's From was observed microseconds before, so it is not read again: on
// the agent's repair path every netlink round trip counts. The original MTU
// is recorded before the first write, so a crash between the two still
// leaves a revertable host.
func Apply(p Plan, k MTUSetter, store Store) ([]Change, error) {
	if p.Refused != "" || len(p.Actions) == 0 {
		return nil, nil
	}
	rec, err := store.LoadRecord()
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, a := range p.Actions {
		current := a.From
		c := Change{Action: a, Found: current}
		if current != a.To {
			if _, known := rec.MTU[a.Link]; !known {
				rec.MTU[a.Link] = current
				if err := store.SaveRecord(rec); err != nil {
					return changes, fmt.Errorf("saving the revert record: %w", err)
				}
			}
			if err := k.SetMTU(a.Link, a.To); err != nil {
				return changes, fmt.Errorf("%s: setting mtu %d: %w", a.Link, a.To, err)
			}
			c.Wrote = true
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// Reverted is one interface put back by Revert.
type Reverted struct {
	Link      string `json:"interface"`
	From      int    `json:"from"`
	To        int    `json:"to"`
	Gone      bool   `json:"gone,omitempty"`
	Unchanged bool   `json:"unchanged,omitempty"`
	// MSS describes a firewall change instead of an MTU.
	MSS string `json:"mss,omitempty"`
}

func (r Reverted) String() string {
	switch {
	case r.MSS != "":
		return r.MSS
	case r.Gone:
		return fmt.Sprintf("%s: no longer exists; its original mtu %d is forgotten", r.Link, r.To)
	case r.Unchanged:
		return fmt.Sprintf("%s: mtu already %d", r.Link, r.To)
	}
	line := fmt.Sprintf("%s: mtu %d → %d (the value before wslmtu changed it)", r.Link, r.From, r.To)
	if r.From < config.MinMTU && r.To >= config.MinMTU {
		line += fmt.Sprintf("; below %d it lost its IPv6 addresses, which do not come back by themselves: "+
			"reconnect the tunnel (e.g. sudo tailscale down && sudo tailscale up)", config.MinMTU)
	}
	return line
}

// Revert puts back every MTU in the record and clears it. A link that has
// gone (a tunnel that reconnected since) cannot be put back and is dropped.
func Revert(k MTUSetter, store Store) ([]Reverted, error) {
	rec, err := store.LoadRecord()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(rec.MTU))
	for name := range rec.MTU {
		names = append(names, name)
	}
	sort.Strings(names)
	var done []Reverted
	for _, name := range names {
		original := rec.MTU[name]
		current, err := k.MTU(name)
		r := Reverted{Link: name, From: current, To: original}
		switch {
		case err != nil:
			r.Gone = true
		case current == original:
			r.Unchanged = true
		default:
			if err := k.SetMTU(name, original); err != nil {
				return done, fmt.Errorf("%s: setting mtu %d: %w", name, original, err)
			}
		}
		delete(rec.MTU, name)
		if err := store.SaveRecord(rec); err != nil {
			return done, fmt.Errorf("saving the revert record: %w", err)
		}
		done = append(done, r)
	}
	return done, nil
}
