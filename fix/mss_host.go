package fix

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/statefile"
)

// MSSRecord remembers what wslmtu created in the firewall, so revert removes
// exactly that, through the same backend, even after the config changed. It
// lives in firewall.json, apart from the MTU record, because the firewall has
// its own lock: an MTU repair never waits for iptables.
type MSSRecord struct {
	Backend  firewall.Backend  `json:"backend"`
	Families []firewall.Family `json:"families"`
	Table    string            `json:"table"`
	Chains   []string          `json:"chains"`
	Jumps    []string          `json:"jumps"`
	// CreatedTables are the families whose mangle table did not exist
	// before wslmtu first created its chains there, so revert deletes it
	// again (nf_tables). Records from before this field have none.
	CreatedTables []firewall.Family `json:"created_tables,omitempty"`
}

// firewallFile is firewall.json: the record, or none once reverted.
type firewallFile struct {
	Version int        `json:"version"`
	MSS     *MSSRecord `json:"mss,omitempty"`
}

const firewallFileVersion = 1

func (s Store) firewallPath() string { return filepath.Join(s.Dir, "firewall.json") }

// loadFirewallRecord reads what wslmtu created in the firewall; nil when
// nothing. Before firewall.json existed, the record was the "mss" key of
// revert.json (version 1), which is read when firewall.json does not exist.
func (s Store) loadFirewallRecord() (*MSSRecord, error) {
	var file firewallFile
	found, err := statefile.ReadJSON(s.firewallPath(), &file)
	if err != nil {
		return nil, err
	}
	if found {
		if file.Version != firewallFileVersion {
			return nil, fmt.Errorf("%s: unknown version %d (this wslmtu reads version %d)", s.firewallPath(), file.Version, firewallFileVersion)
		}
		return file.MSS, nil
	}
	var v1 struct {
		MSS *MSSRecord `json:"mss"`
	}
	if _, err := statefile.ReadJSON(s.RecordPath(), &v1); err != nil {
		return nil, err
	}
	return v1.MSS, nil
}

// saveFirewallRecord replaces firewall.json atomically; nil records that
// nothing of ours is left, which also retires a version 1 record in
// revert.json.
func (s Store) saveFirewallRecord(rec *MSSRecord) error {
	if err := statefile.WriteJSON(s.firewallPath(), firewallFile{Version: firewallFileVersion, MSS: rec}); err != nil {
		return fmt.Errorf("saving the firewall record: %w", err)
	}
	return nil
}

// MSSChange is what one sync did to the firewall.
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

// openFirewall gives the runner of the host's namespace, and the state of
// the firewall read through the recorded backend (else the forced one,
// else the one chosen). Close the runner when done. Looking only for
// leftovers (clamp false, no record), the state is nil when no backend can
// hold anything of ours, found without starting a process.
func (h Host) openFirewall(rec *MSSRecord, clamp bool) (firewall.Runner, *firewall.State, error) {
	if h.Firewall == nil {
		return nil, nil, firewall.Unavailable("no iptables support on this system")
	}
	r, err := h.Firewall(h.NetNS)
	if err != nil {
		return nil, nil, err
	}
	if !clamp && rec == nil && !firewall.MayHoldOurs(r) {
		return r, nil, nil
	}
	backend := h.Backend
	if rec != nil {
		backend = rec.Backend // our chains live there; stay with them
	}
	st, err := firewall.Read(r, backend)
	if err != nil {
		r.Close()
		if rec != nil {
			err = fmt.Errorf("iptables %s, where firewall.json says our chains are: %w", rec.Backend, err)
		}
		return nil, nil, err
	}
	if rec != nil {
		st.Why = "our chains are there (firewall.json)"
	}
	return r, st, nil
}

// checkFirewall fills the MSS part of p from the firewall, read once: the
// backend, and whether our rules are as wanted. With clamping off it looks
// for chains of ours all the same (recorded or left over) and, when there
// are, makes the part their removal. It never changes anything.
func (h Host) checkFirewall(p *Plan) {
	if m := p.MSS; m != nil && m.Refused != "" {
		return
	}
	rec, err := h.Store.loadFirewallRecord()
	if err != nil {
		p.Warnings = append(p.Warnings, err.Error())
	}
	r, st, err := h.openFirewall(rec, p.MSS != nil && p.MSS.Clamp)
	if err != nil {
		readFailed(p, rec, err)
		return
	}
	r.Close()
	if st != nil {
		fillPlan(p, st)
	}
}

// readFailed says in p why the firewall could not be read.
func readFailed(p *Plan, rec *MSSRecord, err error) {
	m := p.MSS
	switch clamp := m != nil && m.Clamp; {
	case !clamp && rec == nil && errors.Is(err, firewall.ErrUnavailable):
		// No iptables and nothing recorded: nothing of ours to find.
	case !clamp:
		p.Warnings = append(p.Warnings, "could not look for our MSS chains: "+err.Error())
	case errors.Is(err, firewall.ErrUnavailable):
		m.State, m.Detail = MSSUnavailable, firewall.Reason(err)
		p.Warnings = append(p.Warnings, err.Error())
	default:
		p.Warnings = append(p.Warnings, "could not read the firewall: "+err.Error())
	}
}

// fillPlan sets the MSS part's backend and state from what was read.
func fillPlan(p *Plan, st *firewall.State) {
	m := p.MSS
	if m == nil || !m.Clamp {
		if st.Ours() {
			p.MSS = &MSSPlan{Clamp: false, Backend: st.Describe(), State: MSSPresent, Families: st.Families()}
		}
		return
	}
	m.Backend, m.Families = st.Describe(), st.Families()
	for _, f := range firewall.Families {
		if why, missing := st.Missing[f]; missing {
			p.Warnings = append(p.Warnings, fmt.Sprintf("no %s MSS clamping: %s", f, why))
		}
	}
	var found []string
	for _, f := range st.Families() {
		found = append(found, firewall.Diff(f, m.firewallRules(f), st.Mangle(f)).Found()...)
	}
	switch {
	case len(found) == 0:
		m.State = MSSInSync
	case !st.Ours():
		m.State = MSSAbsent
	default:
		m.State, m.Detail = MSSDiffers, strings.Join(found, ", ")
	}
}

// SyncFirewall brings the firewall to the MSS part of p: our chains with
// exactly the wanted rules, or, with clamping off (p.MSS nil or Clamp
// false), none of ours, recorded or left over. It reads the firewall once,
// diffs, and applies the difference with one iptables-restore per family;
// when all is in place it starts no restore at all. It fills p's MSS part
// and warnings from that read (as Plan would), so a caller that keeps its
// plan passes a copy. It holds the firewall lock, not the links one, so MTU
// repairs never wait for it: the agent calls it apart from the MTU path,
// because reading iptables costs milliseconds. The record is written before
// anything is created, so revert finds it even after a crash. A refused MSS
// part (see MSSPlan.Refused), or a host that cannot clamp, changes nothing
// and returns an error matching firewall.ErrUnavailable.
func (h Host) SyncFirewall(p *Plan) (*MSSChange, error) {
	if p.Refused != "" {
		return nil, nil
	}
	if m := p.MSS; m != nil && m.Refused != "" {
		return nil, firewall.Unavailable(m.Refused)
	}
	clamp := p.MSS != nil && p.MSS.Clamp
	lock, err := statefile.Acquire(h.Store.Dir, statefile.FirewallLock, 0, nil)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	rec, err := h.Store.loadFirewallRecord()
	if err != nil {
		return nil, err
	}
	r, st, err := h.openFirewall(rec, clamp)
	if err != nil {
		readFailed(p, rec, err)
		if !clamp && rec == nil && errors.Is(err, firewall.ErrUnavailable) {
			return nil, nil // nothing of ours can be there
		}
		return nil, err
	}
	defer r.Close()
	if st == nil {
		return nil, nil // nothing of ours anywhere
	}
	fillPlan(p, st)
	var patches []firewall.Patch
	changes := false
	for _, f := range st.Families() {
		patch := firewall.Diff(f, p.MSS.firewallRules(f), st.Mangle(f))
		patches = append(patches, patch)
		changes = changes || !patch.Empty()
	}
	change := &MSSChange{Backend: st.Describe(), Clamp: clamp}
	if clamp {
		if next := recordFor(rec, st); next != nil {
			if err := h.Store.saveFirewallRecord(next); err != nil {
				return change, err
			}
		}
	} else if rec == nil && !changes {
		return nil, nil
	}
	if changes {
		if change.Done, err = firewall.Apply(r, st, patches); err != nil {
			return change, err
		}
	}
	if clamp {
		return change, nil
	}
	done, err := removeCreatedTables(r, st, rec)
	change.Done = append(change.Done, done...)
	if err != nil {
		return change, err
	}
	return change, h.Store.saveFirewallRecord(nil)
}

// recordFor is the record once our chains exist in every family of st, or
// nil when rec already says so. A family is recorded with whether its
// mangle table existed before we made our chains there.
func recordFor(rec *MSSRecord, st *firewall.State) *MSSRecord {
	next := &MSSRecord{Backend: st.Backend, Table: firewall.Mangle, Chains: slices.Clone(firewall.Chains)}
	for _, j := range firewall.Jumps {
		next.Jumps = append(next.Jumps, j.From+" "+j.Spec())
	}
	if rec != nil {
		next = rec
		next.Families = slices.Clone(rec.Families)
	}
	grew := false
	for _, f := range st.Families() {
		if slices.Contains(next.Families, f) {
			continue
		}
		grew = true
		next.Families = append(next.Families, f)
		if st.Mangle(f) == nil {
			next.CreatedTables = append(next.CreatedTables, f)
		}
	}
	if rec != nil && !grew {
		return nil
	}
	return next
}

// removeCreatedTables deletes the mangle tables our chains brought along
// (see firewall.RemoveCreatedTable) once ours are gone.
func removeCreatedTables(r firewall.Runner, st *firewall.State, rec *MSSRecord) ([]string, error) {
	if rec == nil {
		return nil, nil
	}
	var done []string
	for _, f := range rec.CreatedTables {
		if !slices.Contains(st.Families(), f) {
			continue
		}
		msg, err := firewall.RemoveCreatedTable(r, st.Backend, f)
		if err != nil {
			return done, err
		}
		if msg != "" {
			done = append(done, msg)
		}
	}
	return done, nil
}

// revertFirewall removes our chains and jumps through the recorded backend,
// then the mangle tables they brought along, and forgets them. It removes
// exactly what is ours: the chains named WSLMTU-* and our jumps to them.
func (h Host) revertFirewall() ([]Reverted, error) {
	lock, err := statefile.Acquire(h.Store.Dir, statefile.FirewallLock, 0, nil)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	rec, err := h.Store.loadFirewallRecord()
	if err != nil || rec == nil {
		return nil, err
	}
	r, st, err := h.openFirewall(rec, false)
	if err != nil {
		return nil, fmt.Errorf("removing the MSS chains: %w", err)
	}
	defer r.Close()
	var patches []firewall.Patch
	for _, f := range st.Families() {
		patches = append(patches, firewall.Diff(f, nil, st.Mangle(f)))
	}
	done, err := firewall.Apply(r, st, patches)
	if err == nil {
		var more []string
		more, err = removeCreatedTables(r, st, rec)
		done = append(done, more...)
	}
	var out []Reverted
	for _, d := range done {
		out = append(out, Reverted{MSS: "mss clamp: " + d})
	}
	if err != nil {
		return out, err
	}
	if len(out) == 0 {
		out = append(out, Reverted{MSS: fmt.Sprintf("mss clamp: chains %s and %s were already gone (iptables %s)", firewall.ChainIn, firewall.ChainOut, rec.Backend)})
	}
	return out, h.Store.saveFirewallRecord(nil)
}
