package fix

import (
	"strconv"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// The fake kernel stands in for every interface the planner and the
// appliers use.
var (
	_ Kernel         = (*fakekernel.Kernel)(nil)
	_ detect.Netlink = (*fakekernel.Kernel)(nil)
)

// observe is what fix sees of the fake kernel under cfg.
func observe(t testing.TB, k *fakekernel.Kernel, mode string, cfg config.Config) detect.State {
	t.Helper()
	st, err := detect.Observe(k.Sources(mode), k, cfg)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	return st
}

// hostOn is a Host on the fake kernel with a fresh state directory and no iptables.
func hostOn(t testing.TB, k *fakekernel.Kernel, mode string) Host {
	t.Helper()
	return Host{Sources: k.Sources(mode), Links: k, Kernel: k, Store: Store{Dir: t.TempDir()}}
}

// changeText joins a plan's changes, one per line.
func changeText(p Plan) string { return strings.Join(p.Changes(), "\n") }

// world is a fake host with a state directory: plan, apply and revert as
// fix does, the kernel recording every write.
type world struct {
	t     testing.TB
	k     *fakekernel.Kernel
	mode  string
	cfg   config.Config
	store Store
}

func newWorld(t testing.TB, k *fakekernel.Kernel, mode string, cfg config.Config) *world {
	return &world{t: t, k: k, mode: mode, cfg: cfg, store: Store{Dir: t.TempDir()}}
}

func (w *world) record() Record {
	w.t.Helper()
	rec, _, err := w.store.LoadRecord()
	if err != nil {
		w.t.Fatal(err)
	}
	return rec
}

func (w *world) plan() Plan {
	w.t.Helper()
	return NewPlan(observe(w.t, w.k, w.mode, w.cfg), w.record(), w.cfg)
}

// apply plans and applies, and returns the kernel writes it made.
func (w *world) apply() []string {
	w.t.Helper()
	if _, _, err := Apply(w.plan(), w.record(), w.k, w.store); err != nil {
		w.t.Fatalf("apply: %v", err)
	}
	return w.k.Writes()
}

func (w *world) revert() []string {
	w.t.Helper()
	snap, err := detect.Read(w.k)
	if err != nil {
		w.t.Fatal(err)
	}
	done, err := revertKernel(snap.State(), w.record(), w.k, w.store)
	if err != nil {
		w.t.Fatalf("revert: %v", err)
	}
	var out []string
	for _, d := range done {
		out = append(out, d.String())
	}
	return out
}

// dump is the fake kernel's whole state as text, for before/after compares.
func dump(t testing.TB, k *fakekernel.Kernel) string {
	t.Helper()
	snap, err := detect.Read(k)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range snap.Links {
		b.WriteString(l.Name + " " + itoa(l.MTU) + "\n")
	}
	for _, r := range snap.Routes {
		b.WriteString(r.String() + " mtu " + itoa(r.MTU) + "\n")
	}
	for _, r := range snap.Rules {
		b.WriteString(detect.Tool(r.Family) + " rule " + r.String() + "\n")
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// syncCopy is Host.SyncFirewall on a copy of p's MSS part, so the caller's
// plan stays as it was (tests sync the same plan more than once).
func syncCopy(h Host, p Plan) (*MSSChange, error) {
	if p.MSS != nil {
		m := *p.MSS
		p.MSS = &m
	}
	return h.SyncFirewall(&p)
}

// mssInSync says whether the firewall holds exactly the rules cfg asks for
// (or none are asked for and none of ours are left), as status shows it.
func mssInSync(h Host, cfg config.Config) (bool, error) {
	r, err := h.Plan(cfg)
	if err != nil {
		return false, err
	}
	if m := r.Plan.MSS; m != nil && m.State == MSSUnavailable {
		return false, firewall.Unavailable(m.Detail)
	}
	return !r.Plan.MSS.NeedsChange(), nil
}
