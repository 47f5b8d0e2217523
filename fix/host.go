package fix

import (
	"errors"
	"fmt"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/statefile"
)

// Host is everything fix reads and writes on one machine (or one namespace).
type Host struct {
	Sources detect.Sources
	Links   detect.Netlink
	Kernel  Kernel
	Store   Store
	// Firewall opens the iptables runner of a network namespace; nil where
	// there is no iptables (another OS, tests without a firewall), which
	// makes MSS clamping unavailable.
	Firewall firewall.Opener
	// NetNS is the network namespace the firewall commands run in, as a
	// path (/var/run/netns/NAME, /proc/PID/ns/net); "" is the caller's.
	NetNS string
	// Backend forces the iptables backend for new chains; firewall.Auto
	// picks the one already holding rules, else the default iptables.
	Backend firewall.Backend
	// OnWait is told who holds the state directory's lock when a command
	// has to wait for it (another wslmtu); nil waits silently.
	OnWait func(holder string)
	// LockHeld says the caller holds the state directory's lock already
	// (the agent does, for its whole life): Fix and Revert do not take it
	// again, which would wait for the caller itself.
	LockHeld bool
}

// Report is the outcome of one fix run.
type Report struct {
	State   detect.State `json:"state"`
	Plan    Plan         `json:"plan"`
	Changes []Change     `json:"changes,omitempty"`
	// NotDone lists the plan's steps that were not made because one failed.
	NotDone []string   `json:"not_done,omitempty"`
	MSS     *MSSChange `json:"mss,omitempty"`
	DryRun  bool       `json:"dry_run,omitempty"`
	// Record is whether a revert record exists, and RecordErr why it
	// cannot be used.
	RecordPath  string `json:"record_path"`
	RecordFound bool   `json:"record_found"`
	RecordErr   string `json:"record_error,omitempty"`
	// Paths are the last path checks (the agent's, or doctor's own): a
	// broken one makes the host unhealthy. Empty: none were made.
	Paths []PathCheck `json:"paths,omitempty"`
}

// Plan observes and plans without changing anything. The MSS part is
// checked against the firewall (read only), so status says whether the
// rules are in place. A damaged revert record is reported in the Report
// (the plan is then made as if there were none) and as the error.
func (h Host) Plan(cfg config.Config) (Report, error) {
	r, err := h.observe(cfg)
	var damaged *DamagedError
	if err == nil || errors.As(err, &damaged) {
		h.checkFirewall(&r.Plan)
	}
	return r, err
}

// observe plans without looking at the firewall.
func (h Host) observe(cfg config.Config) (Report, error) {
	st, err := detect.Observe(h.Sources, h.Links, cfg)
	if err != nil {
		return Report{}, err
	}
	rec, found, recErr := h.Store.LoadRecord()
	p := NewPlan(st, rec, cfg)
	r := Report{State: st, Plan: p, DryRun: true, RecordPath: h.Store.RecordPath(), RecordFound: found}
	if recErr != nil {
		r.RecordErr = recErr.Error()
		r.Plan.Warnings = append(r.Plan.Warnings, recErr.Error())
	}
	return r, recErr
}

// Fix observes, plans and applies under the state-directory lock, so a
// concurrent fix, revert or agent reconcile sees either all or none of it.
// It is also the repair entry point: rules deleted or edited by hand are put
// back, and nothing is written when all is in place. When MSS clamping is
// impossible here the MTU part is still applied and the error matches
// firewall.ErrUnavailable. A damaged revert record stops it before any change.
func (h Host) Fix(cfg config.Config) (Report, error) {
	lock, err := h.lock()
	if err != nil {
		return Report{}, err
	}
	defer lock.Release()
	r, err := h.observe(cfg)
	if err != nil {
		r.NotDone = r.Plan.Changes()
		return r, err
	}
	r.DryRun = false
	rec, _, _ := h.Store.LoadRecord()
	_, r.Changes, err = Apply(r.Plan, rec, h.Kernel, h.Store)
	var ae *ApplyError
	if errors.As(err, &ae) {
		r.NotDone = ae.Pending
	}
	if err != nil || r.Plan.Refused != "" {
		h.checkFirewall(&r.Plan)
		return r, err
	}
	// The firewall is read once, under its own lock, and the plan's MSS
	// part filled from that read.
	r.MSS, err = h.SyncFirewall(&r.Plan)
	return r, err
}

// lock takes the state directory's lock unless the caller holds it; a nil
// lock's Release does nothing.
func (h Host) lock() (*statefile.Lock, error) {
	if h.LockHeld {
		return nil, nil
	}
	return h.Store.Lock(h.OnWait)
}

// Revert removes our MSS chains and puts back every recorded value that is
// still wslmtu's, under the same lock. Both are attempted even if one
// fails. found is false when there is no revert record at all.
func (h Host) Revert() (done []Reverted, found bool, err error) {
	lock, err := h.lock()
	if err != nil {
		return nil, false, err
	}
	defer lock.Release()
	rec, found, err := h.Store.LoadRecord()
	if err != nil {
		return nil, found, err
	}
	if boot := detect.BootID(h.Sources.Root); rec.FromOtherBoot(boot) {
		// A WSL restart rebooted the kernel: the MTUs, routes, rules and
		// chains the record names went with it, and the values there now
		// are WSL's and other programs'. Putting "before" values back would
		// only undo them.
		if err := h.Store.SaveRecord(Record{BootID: boot}); err != nil {
			return nil, found, fmt.Errorf("clearing the revert record: %w", err)
		}
		return []Reverted{{Text: fmt.Sprintf("the revert record is from an earlier boot (boot id %s, now %s): "+
			"what it held went with that kernel, so nothing is put back; the record is cleared", rec.BootID, boot)}}, found, nil
	}
	done, mssErr := h.revertFirewall()
	if mssErr == nil {
		rec.MSS = nil // a version 1 record's chains: revertFirewall took them
	}
	snap, err := detect.Read(h.Links)
	if err != nil {
		return done, found, errors.Join(mssErr, err)
	}
	mtus, err := revertKernel(snap.State(), rec, h.Kernel, h.Store)
	return append(done, mtus...), found, errors.Join(mssErr, err)
}
