package fix

import (
	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
)

// Host is everything fix reads and writes on one machine (or one namespace).
type Host struct {
	Sources detect.Sources
	Links   detect.Netlink
	MTUs    MTUSetter
	Store   Store
}

// Report is the outcome of one fix run.
type Report struct {
	State   detect.State `json:"state"`
	Plan    Plan         `json:"plan"`
	Changes []Change     `json:"changes,omitempty"`
	DryRun  bool         `json:"dry_run,omitempty"`
}

// Observe and plan without changing anything.
func (h Host) Plan(cfg config.Config) (Report, error) {
	st, err := detect.Observe(h.Sources, h.Links, cfg)
	if err != nil {
		return Report{}, err
	}
	return Report{State: st, Plan: NewPlan(st, cfg), DryRun: true}, nil
}

// Fix observes, plans and applies under the state-directory lock, so a
// concurrent fix, revert or agent reconcile sees either all or none of it.
func (h Host) Fix(cfg config.Config) (Report, error) {
	lock, err := h.Store.Lock()
	if err != nil {
		return Report{}, err
	}
	defer lock.Release()
	r, err := h.Plan(cfg)
	if err != nil {
		return r, err
	}
	r.DryRun = false
	r.Changes, err = Apply(r.Plan, h.MTUs, h.Store)
	return r, err
}

// Revert puts every recorded MTU back, under the same lock.
func (h Host) Revert() ([]Reverted, error) {
	lock, err := h.Store.Lock()
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	return Revert(h.MTUs, h.Store)
}
