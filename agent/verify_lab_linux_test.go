package agent

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/probe"
	"github.com/wslmtu/wslmtu/internal/testenv/labtest"
)

// waitPaths waits until the agent's counters hold a check of every host
// that satisfies ok, and returns them.
func waitPaths(t *testing.T, a *labAgent, hosts []string, ok func(fix.PathCheck) bool) []fix.PathCheck {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := agentstatus.Read(a.stateDir)
		if err == nil && len(st.Paths) == len(hosts) {
			good := true
			for i, p := range st.Paths {
				good = good && p.Host == hosts[i] && ok(p)
			}
			if good {
				return st.Paths
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no path checks as wanted within 15s; status: %+v (err %v)", st.Paths, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func verifyConfig(scope config.Scope, hosts ...string) config.Config {
	cfg := labAgentConfig()
	cfg.OuterScope = scope
	if scope == config.ScopeAll {
		cfg.MTUStrategy = config.RaiseOuter
	}
	cfg.Verify = hosts
	cfg.VerifyInterval = "0"
	return cfg
}

// With verify naming the tunnel peer and the server behind the Windows VPN,
// the agent checks both after its first fix: both ok, logged once each.
// (Before the fix the peer's path reads broken: internal/probe's lab test.)
// After WSL recreates eth0 at 1280 the agent repairs and checks again.
func TestAgentVerifiesPathsInLab(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{CorporateVPN: true})
	hosts := []string{l.PeerTunnelIP(false).String(), l.CorporateServerIP(false).String()}
	a := startAgent(t, l, verifyConfig(config.ScopeTunnel, hosts...))
	paths := waitPaths(t, a, hosts, fix.PathCheck.OK)
	if paths[0].Interface != lab.TunnelName || paths[0].Size != 1280 || paths[1].Interface != lab.EthName || paths[1].Size != lab.DefaultVPNMTU {
		t.Errorf("paths: %v", paths)
	}
	first := paths[0].Checked
	if err := l.RecreateEth(1280); err != nil {
		t.Fatal(err)
	}
	waitEth(t, l, 1360, 2*time.Second, "after eth0 was recreated")
	waitPaths(t, a, hosts, func(p fix.PathCheck) bool { return p.OK() && p.Checked.After(first) })
	// The verdicts did not change: the log says so once per host.
	if n := strings.Count(a.logs.String(), `msg="path ok"`); n != 2 {
		t.Errorf("%d \"path ok\" lines, want 2 (one per host, at its first verdict)", n)
	}
}

// outer_scope "all": the VPN server's path reads broken, the status names
// the Windows side, and the host is unhealthy with that evidence.
func TestAgentVerifyScopeAllNamesWindows(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{CorporateVPN: true})
	hosts := []string{l.PeerTunnelIP(false).String(), l.CorporateServerIP(false).String()}
	a := startAgent(t, l, verifyConfig(config.ScopeAll, hosts...))
	paths := waitPaths(t, a, hosts, func(p fix.PathCheck) bool { return p.Verdict != "" })
	if !paths[0].OK() {
		t.Errorf("peer: %s", paths[0])
	}
	if p := paths[1]; !p.Broken() || p.Side != fix.SideWindows || p.Size != 1360 || p.Largest != lab.DefaultVPNMTU {
		t.Errorf("VPN server: %s, want broken on the Windows side", p)
	}
	st, _ := agentstatus.Read(a.stateDir)
	if s := st.String(); !strings.Contains(s, "likely side: Windows adapter") {
		t.Errorf("status does not name the Windows side:\n%s", s)
	}
	r := fix.Report{Paths: st.Paths}
	if h := r.Health(); h.Healthy || !strings.Contains(h.String(), "the path to "+hosts[1]+" is broken (likely side: Windows adapter)") {
		t.Errorf("health: %s", h)
	}
	if !strings.Contains(a.logs.String(), "path broken while the plan is in force") {
		t.Errorf("the log does not tell the broken path:\n%s", a.logs)
	}
}

// With verify empty, no echo leaves WSL: an nft counter on WSL's output
// path counts echo requests while the agent starts and repairs, and the
// worker's "nothing sent" line after the repair is the barrier. The same
// counter then sees probe.Verify's echoes, so a counter that counts nothing
// cannot pass for silence.
func TestAgentSendsNoProbeWhenVerifyIsEmpty(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{})
	nft := func(stdin string, args ...string) string {
		var out []byte
		err := l.DoWSL(func() (err error) {
			cmd := exec.Command("nft", args...)
			cmd.Stdin = strings.NewReader(stdin)
			out, err = cmd.CombinedOutput()
			return err
		})
		if err != nil {
			t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	nft(`table inet verifytest {
	counter echoes { }
	chain out {
		type filter hook output priority 0; policy accept;
		icmp type echo-request counter name "echoes"
		icmpv6 type echo-request counter name "echoes"
	}
}
`, "-f", "-")
	echoes := func() int {
		out := nft("", "list", "counter", "inet", "verifytest", "echoes")
		var packets int
		if i := strings.Index(out, "packets "); i >= 0 {
			fmt.Sscan(out[i+len("packets "):], &packets)
		}
		return packets
	}

	a := startAgent(t, l, verifyConfig(config.ScopeTunnel))
	// WSL pushing 1280 into eth0 (RecreateEth would ping to wait for the
	// tunnels): the agent repairs, and the path worker wakes.
	if err := l.SetEthMTU(1280); err != nil {
		t.Fatal(err)
	}
	waitEth(t, l, 1360, 2*time.Second, "after WSL set eth0 to 1280")
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(a.logs.String(), "verify is empty, nothing sent") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the path worker never woke after the repair:\n%s", a.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := echoes(); n != 0 {
		t.Errorf("%d echo requests left WSL with verify empty", n)
	}
	if st, _ := agentstatus.Read(a.stateDir); len(st.Paths) != 0 {
		t.Errorf("paths with verify empty: %v", st.Paths)
	}

	// The counter counts the checks' echoes.
	err := l.DoWSL(func() error {
		r, err := fix.HostAt(l.WSLNetlink(), l.Sources(), t.TempDir()).Plan(verifyConfig(config.ScopeTunnel))
		if err != nil {
			return err
		}
		probe.Verify(context.Background(), []string{l.PeerTunnelIP(false).String()}, r, probe.Config{})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := echoes(); n == 0 {
		t.Error("the counter saw none of probe.Verify's echoes: it proves nothing")
	}
}

// A tunnel whose packets the rules miss (tailscaled marks 0x80000, the
// config's [[tunnel]] says 0x4000, and tailscaled's own fwmark rules are
// gone so nothing tells better): the plan is in force, the peer reads
// broken, the evidence names our own rules, and the host is unhealthy. The
// agent does not write the plan again for it.
func TestAgentVerifyRulesMissTheTunnel(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{})
	l.DeleteTailscaledRules()
	cfg := verifyConfig(config.ScopeTunnel, l.PeerTunnelIP(false).String())
	cfg.TunnelSettings = []config.TunnelSpec{{Name: lab.TunnelName, FwMark: "0x4000"}}
	a := startAgent(t, l, cfg)
	paths := waitPaths(t, a, cfg.Verify, func(p fix.PathCheck) bool { return p.Verdict != "" })
	if p := paths[0]; !p.Broken() || p.Side != fix.SideOurRules {
		t.Errorf("peer: %s, want broken while the plan is in force, our own rules", p)
	}
	st, _ := agentstatus.Read(a.stateDir)
	if h := (fix.Report{Paths: st.Paths}).Health(); h.Healthy || !strings.Contains(h.String(), "likely side: our own rules") {
		t.Errorf("health: %s", h)
	}
	// The round after the next repair is the barrier: by then a rewrite
	// caused by the broken path would have shown as a repair of its own.
	if err := l.SetEthMTU(1280); err != nil {
		t.Fatal(err)
	}
	waitEth(t, l, 1360, 2*time.Second, "after WSL set eth0 to 1280")
	checked := paths[0].Checked
	waitPaths(t, a, cfg.Verify, func(p fix.PathCheck) bool { return p.Checked.After(checked) })
	if after, _ := agentstatus.Read(a.stateDir); after.Repairs != st.Repairs+1 {
		t.Errorf("%d repairs after one eth0 reset (%d before): a broken path must not make the agent write the plan again", after.Repairs, st.Repairs)
	}
}
