package fix

import (
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// Health is one verdict: what the config asks for is in force. A clamp
// that is asked for and cannot be applied (no iptables) is not: status
// used to call that host healthy while doctor failed its mss check and the
// agent's metrics said 0.
func TestHealthSaysWhatIsNotInForce(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	h := hostOn(t, k, "nat") // no iptables
	cfg := config.Default()
	cfg.MSSClamp = true
	if _, err := h.Fix(cfg); err == nil {
		t.Fatal("fix with mss_clamp and no iptables went through")
	}
	r, err := h.Plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Health(); got.Healthy || !got.Managed || got.String() != "unhealthy: mss_clamp is on but cannot be applied: no iptables support on this system" {
		t.Errorf("health with an impossible clamp: %+v (%s)", got, got)
	}
	if r.Healthy() {
		t.Error("Report.Healthy says otherwise")
	}

	cfg.MSSClamp = false
	r, _ = h.Plan(cfg)
	if got := r.Health(); !got.Healthy || got.String() != "healthy" {
		t.Errorf("health with the plan in force: %s", got)
	}
	k.Reset("eth0", 1280)
	r, _ = h.Plan(cfg)
	if got := r.Health().String(); got != "unhealthy: 1 change pending" {
		t.Errorf("health with eth0 reset: %s", got)
	}

	r.Plan.Refused = "this is not WSL"
	if got := r.Health(); !got.Healthy || got.Managed || !strings.HasPrefix(got.String(), "not managed") {
		t.Errorf("health of a host wslmtu does not manage: %s", got)
	}
}

// A plan with nothing left to change while the kernel does not hold the
// tunnel scope (doctor's outer scope check fails on it) is unhealthy too.
func TestHealthReadsTheScopeFromTheKernel(t *testing.T) {
	eth0 := detect.Link{Name: "eth0", Index: 2, MTU: 1360, Up: true}
	st := detect.State{Outer: &eth0, Links: []detect.Link{eth0},
		Routes: []detect.Route{{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2, Dev: "eth0"}}}
	r := Report{State: st, Plan: Plan{Scope: config.ScopeTunnel, WindowsMTU: 1280}}
	if got := r.Health().String(); got != "unhealthy: the tunnel scope is not in force although nothing is left to change" {
		t.Errorf("health = %s", got)
	}
	st.Routes[0].MTU = 1280
	r.State = st
	if got := r.Health(); !got.Healthy {
		t.Errorf("with the route at 1280: %s", got)
	}
}
