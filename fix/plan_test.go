package fix

import (
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

func wslState(outer int, tunnels ...detect.Link) detect.State {
	eth0 := detect.Link{Name: "eth0", Index: 2, MTU: outer}
	return detect.State{
		Env:     detect.Environment{WSL: true, Version: 2, NetworkingMode: "nat"},
		Links:   append([]detect.Link{eth0}, tunnels...),
		Outer:   &eth0,
		Tunnels: tunnels,
	}
}

func tun(name string, mtu int) detect.Link { return detect.Link{Name: name, MTU: mtu, Kind: "tun"} }

func withStrategy(s config.Strategy) config.Config {
	cfg := config.Default()
	cfg.MTUStrategy = s
	return cfg
}

// The MTU decisions, on states built by hand (no routes: the tunnel scope
// has nothing to keep, so only the interfaces change).
func TestPlanTable(t *testing.T) {
	capped := config.Default()
	capped.MaxOuterMTU = 1400
	tests := []struct {
		name    string
		state   detect.State
		cfg     config.Config
		want    string // the actions, one per line
		warning string // a substring of a warning, if one is expected
	}{
		{"raise 1280 for tailscale0 1280", wslState(1280, tun("tailscale0", 1280)), config.Default(),
			"eth0: mtu 1280 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)", ""},
		{"raise 1300 for tailscale0 1280", wslState(1300, tun("tailscale0", 1280)), config.Default(),
			"eth0: mtu 1300 → 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead)", ""},
		{"1400 is already enough for 1280", wslState(1400, tun("tailscale0", 1280)), config.Default(), "", ""},
		{"1500 is already enough for 1280", wslState(1500, tun("tailscale0", 1280)), config.Default(), "", ""},
		{"raise 1400 for wg0 1420", wslState(1400, tun("wg0", 1420)), withStrategy(config.RaiseOuter),
			"eth0: mtu 1400 → 1500 (wg0 1420 + 80 WireGuard/IPv6 overhead)", ""},
		{"1500 is just enough for 1420", wslState(1500, tun("wg0", 1420)), config.Default(), "", ""},
		{"two tunnels: the widest decides", wslState(1280, tun("tailscale0", 1280), tun("wg0", 1400)), config.Default(),
			"eth0: mtu 1280 → 1480 (wg0 1400 + 80 WireGuard/IPv6 overhead)", ""},
		{"no tunnel", wslState(1280), config.Default(), "", ""},
		{"cap reached: raise to the cap and say what else to do", wslState(1280, tun("wg0", 1420)), capped,
			"eth0: mtu 1280 → 1400 (wg0 1420 + 80 WireGuard/IPv6 overhead, capped at max_outer_mtu 1400)", "lower-tunnel"},
		{"cap reached, already at the cap", wslState(1400, tun("wg0", 1420)), capped, "", "max_outer_mtu is 1400"},
		{"never lowers the outer interface", wslState(9000, tun("tailscale0", 1280)), config.Default(), "", ""},
		{"lower-tunnel 1280", wslState(1280, tun("tailscale0", 1280)), withStrategy(config.LowerTunnel),
			"tailscale0: mtu 1280 → 1200 (eth0 1280 − 80 WireGuard/IPv6 overhead)", "loses its IPv6 addresses"},
		{"lower-tunnel 1400 two tunnels", wslState(1400, tun("tailscale0", 1280), tun("wg0", 1420)), withStrategy(config.LowerTunnel),
			"wg0: mtu 1420 → 1320 (eth0 1400 − 80 WireGuard/IPv6 overhead)", ""},
		{"lower-tunnel 1500 nothing to do", wslState(1500, tun("wg0", 1420)), withStrategy(config.LowerTunnel), "", ""},
		{"lower-tunnel never raises a tunnel", wslState(1500, tun("tailscale0", 1280)), withStrategy(config.LowerTunnel), "", ""},
		{"off", wslState(1280, tun("tailscale0", 1280)), withStrategy(config.StrategyOff), "", ""},
		// Eth0 68 with lower-tunnel planned tailscale0 → -12.
		{"lower-tunnel below the kernel's minimum is refused", wslState(68, tun("tailscale0", 1280)), withStrategy(config.LowerTunnel),
			"", "cannot lower tailscale0 to -12: the kernel allows no mtu below 68"},
		{"lower-tunnel refuses ZeroTier", wslState(1280, tun("zt3jnkd6ic", 2800)), withStrategy(config.LowerTunnel),
			"", "cannot lower zt3jnkd6ic: ZeroTier sends 1432-byte UDP payloads whatever the interface's mtu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPlan(tt.state, Record{}, tt.cfg)
			var lines []string
			for _, a := range p.Actions {
				lines = append(lines, a.String())
			}
			if got := strings.Join(lines, "\n"); got != tt.want {
				t.Errorf("actions:\n%s\nwant:\n%s", got, tt.want)
			}
			warnings := strings.Join(p.Warnings, "\n")
			if tt.warning == "" && warnings != "" {
				t.Errorf("unexpected warnings: %s", warnings)
			}
			if tt.warning != "" && !strings.Contains(warnings, tt.warning) {
				t.Errorf("warnings %q do not mention %q", warnings, tt.warning)
			}
			if p.Refused != "" {
				t.Errorf("refused on WSL: %s", p.Refused)
			}
			for _, a := range p.Actions {
				if a.To < 68 || a.To > 65535 {
					t.Errorf("impossible target %v", a)
				}
			}
		})
	}
}

func TestPlanRefusesOffWSLButShowsActions(t *testing.T) {
	st := wslState(1280, tun("tailscale0", 1280))
	st.Env = detect.Environment{Note: "the kernel is not a WSL kernel"}
	p := NewPlan(st, Record{}, config.Default())
	if p.Refused == "" || len(p.Actions) != 1 {
		t.Fatalf("plan = %+v, want refused with the action listed", p)
	}
	if !strings.Contains(p.String(), "not applied: this is not WSL") || !strings.Contains(p.Refused, "--assume-wsl") {
		t.Errorf("plan text does not say why nothing is applied:\n%s", p)
	}
	k := fakekernel.New()
	if _, changes, err := Apply(p, Record{}, k, Store{}); err != nil || changes != nil || len(k.Writes()) != 0 {
		t.Errorf("Apply of a refused plan did something: %v %v", changes, err)
	}
}

func TestPlanWSL1HasNothingToFix(t *testing.T) {
	st := wslState(1280, tun("tailscale0", 1280))
	st.Env = detect.Environment{WSL: true, Version: 1, Note: "WSL1 shares Windows' network stack: there is no eth0 MTU to fix"}
	p := NewPlan(st, Record{}, config.Default())
	if !p.Empty() || !strings.Contains(p.String(), "no eth0 MTU to fix") {
		t.Errorf("plan on WSL1:\n%s", p)
	}
}
