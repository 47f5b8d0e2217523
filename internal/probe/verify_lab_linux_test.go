package probe_test

import (
	"context"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/probe"
	"github.com/wslmtu/wslmtu/internal/testenv/labtest"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// verifyIn plans the lab's WSL host under cfg (optionally fixing it first)
// and checks the paths to hosts, all inside the WSL namespace.
func verifyIn(t *testing.T, l *lab.Lab, h fix.Host, cfg config.Config, apply bool, hosts ...string) []probe.PathResult {
	t.Helper()
	var out []probe.PathResult
	err := l.DoWSL(func() error {
		if apply {
			if _, err := h.Fix(cfg); err != nil {
				return err
			}
		}
		r, err := h.Plan(cfg)
		if err != nil {
			return err
		}
		out = probe.Verify(context.Background(), hosts, r, probe.Config{Timeout: time.Second})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range out {
		t.Logf("%s\n  why: %s\n  evidence: %s", p, p.Why, p.Evidence)
	}
	return out
}

func labCfg(scope config.Scope) config.Config {
	cfg := config.Default()
	cfg.AssumeWSL = true
	cfg.OuterScope = scope
	return cfg
}

// The tunnel peer and the server behind the Windows VPN: the peer's path
// reads broken before the fix (tailscale0's outer packets are fragmented
// and the fragments dropped) and ok after it; the VPN server's path keeps
// what Windows chose, before and after.
func TestVerifyLabBeforeAndAfterTheFix(t *testing.T) {
	netnstest.RequireRoot(t, "builds the namespace lab")
	l := labtest.New(t, lab.Options{CorporateVPN: true})
	h := fix.HostAt(l.WSLNetlink(), l.Sources(), t.TempDir())
	cfg := labCfg(config.ScopeTunnel)
	peer, corp := l.PeerTunnelIP(false).String(), l.CorporateServerIP(false).String()

	before := verifyIn(t, l, h, cfg, false, peer, corp)
	if p := before[0]; p.Verdict != fix.PathBroken || p.Side != fix.SideNotFixed || !p.Tunnel || p.Interface != lab.TunnelName || p.Size != 1280 || p.Largest != 1216 {
		t.Errorf("peer before the fix: %s (largest %d), want broken, not fixed, via tailscale0, 1280 needed, 1216 crossed", p, p.Largest)
	}
	if p := before[1]; p.Verdict != fix.PathOK || p.Tunnel || p.Interface != lab.EthName || p.Size != lab.DefaultVPNMTU {
		t.Errorf("VPN server before the fix: %s, want ok via eth0 at %d", p, lab.DefaultVPNMTU)
	}

	after := verifyIn(t, l, h, cfg, true, peer, corp)
	for _, p := range after {
		if !p.OK() || p.Largest != p.Size {
			t.Errorf("after the fix: %s, want ok", p)
		}
	}
	if after[0].Size != 1280 || after[1].Size != lab.DefaultVPNMTU {
		t.Errorf("after the fix the peer must carry %d (tailscale0) and the VPN server %d (what Windows chose); got %d and %d",
			1280, lab.DefaultVPNMTU, after[0].Size, after[1].Size)
	}
}

// tailscaled's own WSL fix (eth0 1280 → 1360 for every packet, at its
// start) ran before wslmtu: the VPN server's path must carry the 1360 eth0
// now sends, the Windows VPN adapter carries 1280: broken before the fix.
// After it, the default route keeps what Windows chose and the path is ok;
// the peer's path is ok before (1360 fits tailscale0's packets) and after.
func TestVerifyLabTailscaledFixBreaksTheVPNUntilTheFix(t *testing.T) {
	netnstest.RequireRoot(t, "builds the namespace lab")
	l := labtest.New(t, lab.Options{CorporateVPN: true})
	if err := l.SetEthMTU(1360); err != nil { // tailscaled's fixupWSLMTU
		t.Fatal(err)
	}
	h := fix.HostAt(l.WSLNetlink(), l.Sources(), t.TempDir())
	cfg := labCfg(config.ScopeTunnel)
	peer, corp := l.PeerTunnelIP(false).String(), l.CorporateServerIP(false).String()

	before := verifyIn(t, l, h, cfg, false, peer, corp)
	if p := before[1]; p.Verdict != fix.PathBroken || p.Side != fix.SideNotFixed || p.Tunnel || p.Size != 1360 || p.Largest != lab.DefaultVPNMTU {
		t.Errorf("VPN server before the fix: %s (largest %d), want broken, not fixed, 1360 needed, %d crossed", p, p.Largest, lab.DefaultVPNMTU)
	}
	if !before[0].OK() {
		t.Errorf("peer before the fix: %s, want ok (eth0 at 1360 carries tailscale0's packets)", before[0])
	}
	after := verifyIn(t, l, h, cfg, true, peer, corp)
	for _, p := range after {
		if !p.OK() || p.Largest != p.Size {
			t.Errorf("after the fix: %s, want ok", p)
		}
	}
	if after[1].Size != lab.DefaultVPNMTU {
		t.Errorf("after the fix the VPN server must carry what Windows chose (%d), got %d", lab.DefaultVPNMTU, after[1].Size)
	}
}

// outer_scope "all" raises eth0 for every packet: the VPN server's path
// must now carry eth0's 1360, the Windows VPN adapter carries 1280 and says
// nothing: broken, on the Windows side.
func TestVerifyLabScopeAllBreaksTheVPN(t *testing.T) {
	netnstest.RequireRoot(t, "builds the namespace lab")
	l := labtest.New(t, lab.Options{CorporateVPN: true})
	h := fix.HostAt(l.WSLNetlink(), l.Sources(), t.TempDir())
	cfg := labCfg(config.ScopeAll)
	cfg.MTUStrategy = config.RaiseOuter
	peer, corp := l.PeerTunnelIP(false).String(), l.CorporateServerIP(false).String()
	got := verifyIn(t, l, h, cfg, true, peer, corp)
	if !got[0].OK() {
		t.Errorf("peer: %s, want ok (the raise fixes the tunnel)", got[0])
	}
	if p := got[1]; p.Verdict != fix.PathBroken || p.Side != fix.SideWindows || p.Size != 1360 || p.Largest != lab.DefaultVPNMTU {
		t.Errorf("VPN server: %s (largest %d), want broken on the Windows side, 1360 needed, %d crossed", p, p.Largest, lab.DefaultVPNMTU)
	}
}

// A tunnel whose packets the rules miss: tailscaled marks its packets
// 0x80000, the config's [[tunnel]] says 0x4000, and without tailscaled's
// fwmark rules (deleted here) nothing tells wslmtu better. The plan is in force
// as the kernel holds it, yet the tunnel's packets leave at what Windows
// chose: the peer reads broken, and the evidence names our own rules.
func TestVerifyLabRulesMissTheTunnel(t *testing.T) {
	netnstest.RequireRoot(t, "builds the namespace lab")
	l := labtest.New(t, lab.Options{})
	h := fix.HostAt(l.WSLNetlink(), l.Sources(), t.TempDir())
	cfg := labCfg(config.ScopeTunnel)
	cfg.TunnelSettings = []config.TunnelSpec{{Name: lab.TunnelName, FwMark: "0x4000"}}
	l.DeleteTailscaledRules()
	got := verifyIn(t, l, h, cfg, true, l.PeerTunnelIP(false).String())
	var r fix.Report
	if err := l.DoWSL(func() (err error) { r, err = h.Plan(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	if n := len(r.Plan.Changes()); n != 0 || !r.Health().Healthy {
		t.Fatalf("the plan must be in force (%d changes pending, %s)", n, r.Health())
	}
	if p := got[0]; p.Verdict != fix.PathBroken || p.Side != fix.SideOurRules {
		t.Errorf("peer: %s, want broken, our own rules", p)
	}
}
