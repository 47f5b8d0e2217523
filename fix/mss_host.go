package fix

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// MSSRecord remembers what wslmtu created in the firewall, so revert removes
// exactly that, through the same backend, even after the config changed.
type MSSRecord struct {
	Backend  Backend  `json:"backend"`
	Families []Family `json:"families"`
	Table    string   `json:"table"`
	Chains   []string `json:"chains"`
	Jumps    []string `json:"jumps"`
}

func newMSSRecord(nf *Netfilter) *MSSRecord {
	rec := &MSSRecord{Backend: nf.Backend, Families: nf.Available(), Table: MangleTable, Chains: []string{ChainIn, ChainOut}}
	for _, j := range mssJumps(IPv4) {
		rec.Jumps = append(rec.Jumps, strings.TrimPrefix(j.line(), "-A "))
	}
	return rec
}

// MSSChange is what one fix did to the firewall.
type MSSChange struct {
	Backend string   `json:"backend"`
	Clamp   bool     `json:"clamp"`
	Done    []string `json:"done,omitempty"`
}

func (c MSSChange) String() string {
	if len(c.Done) == 0 {
		if !c.Clamp {
			return fmt.Sprintf("mss clamp off: none of our rules were left (iptables %s)", c.Backend)
		}
		return fmt.Sprintf("mss clamp: rules already in place (iptables %s)", c.Backend)
	}
	var b strings.Builder
	for i, d := range c.Done {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "mss clamp: %s", d)
	}
	return b.String()
}

// NetfilterOpener gives the MSS applier for a backend (BackendAuto: choose).
type NetfilterOpener func(Backend) (*Netfilter, error)

// CachedNetfilter opens each backend once, because opening runs several
// iptables processes and the agent reconciles often.
func CachedNetfilter(open NetfilterOpener) NetfilterOpener {
	var mu sync.Mutex
	cache := map[Backend]*Netfilter{}
	return func(b Backend) (*Netfilter, error) {
		mu.Lock()
		defer mu.Unlock()
		if nf, ok := cache[b]; ok {
			return nf, nil
		}
		nf, err := open(b)
		if err == nil {
			cache[b] = nf
		}
		return nf, err
	}
}

// checkMSS fills in the MSS part of p from the firewall: the backend, and
// whether the rules are in place. With clamping off but chains recorded, it
// turns the part into their removal. It never changes anything.
func (h Host) checkMSS(p *Plan) *Netfilter {
	rec, _, err := h.Store.LoadRecord()
	if err != nil {
		p.Warnings = append(p.Warnings, err.Error())
	}
	if p.MSS == nil {
		if rec.MSS == nil {
			return nil
		}
		p.MSS = &MSSPlan{Clamp: false}
	}
	m := p.MSS
	if h.Netfilter == nil {
		m.State, m.Detail = MSSUnavailable, "no iptables support on this system"
		p.Warnings = append(p.Warnings, Unavailable(m.Detail).Error())
		return nil
	}
	backend := h.Backend
	if rec.MSS != nil {
		backend = rec.MSS.Backend // our chains live there; stay with them
	}
	nf, err := h.Netfilter(backend)
	if err != nil {
		m.State, m.Detail = MSSUnavailable, err.Error()
		if !errors.Is(err, ErrMSSUnavailable) {
			err = Unavailable(err.Error())
		}
		p.Warnings = append(p.Warnings, err.Error())
		return nil
	}
	shown := *nf
	if rec.MSS != nil {
		shown.Why = "our chains are there (revert record)"
	}
	m.Backend, m.Families = shown.Describe(), nf.Available()
	for _, f := range Families {
		if why, missing := nf.Missing[f]; missing && m.Clamp {
			p.Warnings = append(p.Warnings, fmt.Sprintf("no %s MSS clamping: %s", f, why))
		}
	}
	state, detail, err := nf.Check(m)
	if err != nil {
		p.Warnings = append(p.Warnings, "could not read the firewall: "+err.Error())
		return nf
	}
	m.State, m.Detail = state, detail
	if !m.Clamp && state == MSSAbsent {
		p.MSS = nil // only a stale record is left; Fix clears it
	}
	return nf
}

// ApplyMSS brings the firewall to the plan's MSS part: our chains in sync,
// or, with clamping off, gone. The record is written before the first chain
// is created, so revert finds them even after a crash.
func ApplyMSS(p Plan, nf *Netfilter, store Store) (*MSSChange, error) {
	m := p.MSS
	rec, _, err := store.LoadRecord()
	if err != nil {
		return nil, err
	}
	if m == nil {
		if rec.MSS == nil || nf == nil {
			return nil, nil
		}
		// Clamping is off and the record lists chains: forget them once
		// they are really gone (deleted by hand, or a reboot).
		if state, _, err := nf.Check(&MSSPlan{}); err != nil || state != MSSAbsent {
			return nil, err
		}
		rec.MSS = nil
		return nil, store.SaveRecord(rec)
	}
	if m.State == MSSUnavailable {
		return nil, Unavailable(m.Detail)
	}
	if nf == nil {
		return nil, Unavailable("iptables could not be opened")
	}
	change := &MSSChange{Backend: m.Backend, Clamp: m.Clamp}
	if change.Backend == "" {
		change.Backend = nf.Describe()
	}
	if !m.Clamp {
		change.Done, err = nf.Remove()
		if err != nil {
			return change, err
		}
		rec.MSS = nil
		return change, store.SaveRecord(rec)
	}
	if want := newMSSRecord(nf); rec.MSS == nil || !slices.Equal(rec.MSS.Families, want.Families) {
		if rec.MSS != nil {
			for _, f := range rec.MSS.Families {
				if !slices.Contains(want.Families, f) {
					want.Families = append(want.Families, f)
				}
			}
		}
		rec.MSS = want
		if err := store.SaveRecord(rec); err != nil {
			return change, fmt.Errorf("saving the revert record: %w", err)
		}
	}
	if m.State == MSSInSync {
		return change, nil
	}
	change.Done, err = nf.Sync(m)
	return change, err
}

// RevertMSS removes our chains and jumps, through the recorded backend, and
// forgets them.
func RevertMSS(open NetfilterOpener, store Store) ([]Reverted, error) {
	rec, _, err := store.LoadRecord()
	if err != nil || rec.MSS == nil {
		return nil, err
	}
	if open == nil {
		return nil, errors.New("the revert record lists MSS chains, but this system has no iptables support")
	}
	nf, err := open(rec.MSS.Backend)
	if err != nil {
		return nil, fmt.Errorf("removing the MSS chains (iptables %s): %w", rec.MSS.Backend, err)
	}
	done, err := nf.Remove()
	var out []Reverted
	for _, d := range done {
		out = append(out, Reverted{MSS: "mss clamp: " + d})
	}
	if err != nil {
		return out, err
	}
	if len(out) == 0 {
		out = append(out, Reverted{MSS: fmt.Sprintf("mss clamp: chains %s and %s were already gone (iptables %s)", ChainIn, ChainOut, rec.MSS.Backend)})
	}
	rec.MSS = nil
	if err := store.SaveRecord(rec); err != nil {
		return out, fmt.Errorf("saving the revert record: %w", err)
	}
	return out, nil
}
