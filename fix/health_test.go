package fix

import (
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/fakekernel"
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
