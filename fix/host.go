package fix

import (
	"errors"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
)

// Host is everything fix reads and writes on one machine (or one namespace).
type Host struct {
	Sources detect.Sources
	Links   detect.Netlink
	MTUs    MTUSetter
	Store   Store
	// Netfilter opens the MSS applier; nil where there is no iptables
	// (another OS), which makes MSS clamping unavailable.
	Netfilter NetfilterOpener
	// Backend forces the iptables backend for new chains; BackendAuto
	// picks the one already holding rules, else the default iptables.
	Backend Backend
}

// Report is the outcome of one fix run.
type Report struct {
	State   detect.State `json:"state"`
	Plan    Plan         `json:"plan"`
	Changes []Change     `json:"changes,omitempty"`
	MSS     *MSSChange   `json:"mss,omitempty"`
	DryRun  bool         `json:"dry_run,omitempty"`
}

// Observe and plan without changing anything. The MSS part is checked
// against the firewall (read only), so status says whether the rules are in place.
func (h Host) Plan(cfg config.Config) (Report, error) {
	r, _, err := h.plan(cfg)
	return r, err
}

func (h Host) plan(cfg config.Config) (Report, *Netfilter, error) {
	st, err := detect.Observe(h.Sources, h.Links, cfg)
	if err != nil {
		return Report{}, nil, err
	}
	p := NewPlan(st, cfg)
	nf := h.checkMSS(&p)
	return Report{State: st, Plan: p, DryRun: true}, nf, nil
}

// Fix observes, plans and applies under the state-directory lock, so a
// concurrent fix, revert or agent reconcile sees either all or none of it.
// It is also the repair entry point: rules deleted or edited by hand are put
// back, and nothing is written when all is in place. When MSS clamping is
// impossible here the MTU part is still applied and the error matches
// ErrMSSUnavailable.
func (h Host) Fix(cfg config.Config) (Report, error) {
	lock, err := h.Store.Lock()
	if err != nil {
		return Report{}, err
	}
	defer lock.Release()
	r, nf, err := h.plan(cfg)
	if err != nil {
		return r, err
	}
	r.DryRun = false
	r.Changes, err = Apply(r.Plan, h.MTUs, h.Store)
	if err != nil || r.Plan.Refused != "" {
		return r, err
	}
	r.MSS, err = ApplyMSS(r.Plan, nf, h.Store)
	return r, err
}

// MSSInSync is the cheap check for a periodic repair: true when the
// firewall holds exactly the rules the config asks for (or none are asked
// for and none of ours are left). It changes nothing.
func (h Host) MSSInSync(cfg config.Config) (bool, error) {
	r, _, err := h.plan(cfg)
	if err != nil {
		return false, err
	}
	if m := r.Plan.MSS; m != nil && m.State == MSSUnavailable {
		return false, Unavailable(m.Detail)
	}
	return !r.Plan.MSS.NeedsChange(), nil
}

// Revert removes our MSS chains and puts every recorded MTU back, under the
// same lock. Both are attempted even if one fails.
func (h Host) Revert() ([]Reverted, error) {
	lock, err := h.Store.Lock()
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	done, mssErr := RevertMSS(h.Netfilter, h.Store)
	mtus, err := Revert(h.MTUs, h.Store)
	return append(done, mtus...), errors.Join(mssErr, err)
}

// SyncMSS checks the firewall against the MSS part of p and brings it in
// line; the agent calls it apart from the MTU path because reading iptables
// costs milliseconds, which MTU repairs must not wait for.
func (h Host) SyncMSS(p *Plan) (*MSSChange, error) {
	lock, err := h.Store.Lock()
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	nf := h.checkMSS(p)
	if p.MSS == nil {
		return nil, nil
	}
	return ApplyMSS(*p, nf, h.Store)
}
