package fix

import (
	"errors"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/firewall"
)

// Host is everything fix reads and writes on one machine (or one namespace).
type Host struct {
	Sources detect.Sources
	Links   detect.Netlink
	MTUs    MTUSetter
	Store   Store
	// Firewall opens the iptables runner of a network namespace; nil where
	// there is no iptables (another OS, tests without a firewall), which
	// makes MSS clamping unavailable.
	Firewall firewall.Opener
	// NetNS is the network namespace the firewall commands run in, as a
	// path (/var/run/netns/NAME, /proc/PID/ns/net); "" is the caller's.
	NetNS string
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
	return h.plan(cfg)
}

func (h Host) plan(cfg config.Config) (Report, error) {
	r, err := h.observe(cfg)
	if err == nil {
		h.CheckFirewall(&r.Plan)
	}
	return r, err
}

// observe plans without looking at the firewall.
func (h Host) observe(cfg config.Config) (Report, error) {
	st, err := detect.Observe(h.Sources, h.Links, cfg)
	if err != nil {
		return Report{}, err
	}
	return Report{State: st, Plan: NewPlan(st, cfg), DryRun: true}, nil
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
	r, err := h.observe(cfg)
	if err != nil {
		return r, err
	}
	r.DryRun = false
	r.Changes, err = Apply(r.Plan, h.MTUs, h.Store)
	if err != nil || r.Plan.Refused != "" {
		h.CheckFirewall(&r.Plan)
		return r, err
	}
	// The firewall is read once, under its lock, and the plan's MSS part
	// filled from that read.
	r.MSS, err = h.syncFirewall(&r.Plan)
	return r, err
}

// MSSInSync is the cheap check for a periodic repair: true when the
// firewall holds exactly the rules the config asks for (or none are asked
// for and none of ours are left). It changes nothing.
func (h Host) MSSInSync(cfg config.Config) (bool, error) {
	r, err := h.plan(cfg)
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
	done, mssErr := h.RevertFirewall()
	mtus, err := Revert(h.MTUs, h.Store)
	return append(done, mtus...), errors.Join(mssErr, err)
}

// SyncMSS checks the firewall against the MSS part of p and brings it in
// line; the agent calls it apart from the MTU path because reading iptables
// costs milliseconds, which MTU repairs must not wait for.
func (h Host) SyncMSS(p *Plan) (*MSSChange, error) {
	return h.SyncFirewall(*p)
}
