//go:build linux

package fix_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/testenv/labtest"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// reporterRule is the rule from the bug report: it clamps SYNs leaving on
// the tunnel, which only changes what the peer sends, and to 1180, which
// ignores WireGuard's padding.
var reporterRule = []string{"-t", "mangle", "OUTPUT", "-o", "tailscale0", "-p", "tcp",
	"--tcp-flags", "SYN,RST", "SYN", "-j", "TCPMSS", "--set-mss", "1180"}

func iptablesIn(l *lab.Lab, op string, rule []string) error {
	args := append([]string{rule[0], rule[1], op}, rule[2:]...)
	return l.DoWSL(func() error {
		if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	})
}

// TestMSSClampAloneFixesTCPInTheLab: eth0 and tailscale0 both 1280 (the
// broken WSL setup), MTUs left alone, only our clamp: the 55 kB transfers
// that hang without it cross in both directions, on both underlays.
func TestMSSClampAloneFixesTCPInTheLab(t *testing.T) {
	netnstest.RequireRoot(t, "builds the namespace lab")
	for _, v6 := range []bool{false, true} {
		name := "ipv4 underlay"
		if v6 {
			name = "ipv6 underlay"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := labtest.New(t, lab.Options{EthMTU: 1280, TunnelMTU: 1280, IPv6Underlay: v6})
			ctx := context.Background()

			if r := l.Download(ctx); r.OK {
				t.Fatalf("the lab does not show the hang without a fix: %v", r)
			}

			if err := iptablesIn(l, "-A", reporterRule); err != nil {
				t.Fatal(err)
			}
			for _, r := range []lab.Result{l.Download(ctx), l.Upload(ctx)} {
				if r.OK {
					t.Errorf("the bug report's rule made this work after all: %v", r)
				} else {
					t.Logf("with the bug report's rule (as expected): %v", r)
				}
			}
			if err := iptablesIn(l, "-D", reporterRule); err != nil {
				t.Fatal(err)
			}

			cfg := config.Default()
			cfg.AssumeWSL, cfg.MTUStrategy, cfg.MSSClamp = true, config.StrategyOff, true
			cfg.OuterInterface, cfg.Tunnels = lab.EthName, []string{lab.TunnelName}
			dir := t.TempDir()
			src := detect.Sources{Root: fstest.MapFS{}, Getenv: func(string) string { return "" }}
			inWSL := func(fn func(fix.Host) error) error {
				return l.DoWSL(func() error { return fn(fix.HostAt(l.WSLNetlink(), src, dir)) })
			}
			err := inWSL(func(h fix.Host) error {
				r, err := h.Fix(cfg)
				t.Logf("fix:\n%s%v", r.Plan, r.MSS)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []lab.Result{l.Download(ctx), l.Upload(ctx)} {
				if !r.OK {
					t.Errorf("with our clamp: %v", r)
				} else {
					t.Logf("with our clamp: %v", r)
				}
			}
			if got := l.EthMTU(); got != 1280 {
				t.Errorf("mtu_strategy off changed eth0 to %d", got)
			}

			err = inWSL(func(h fix.Host) error {
				_, _, err := h.Revert()
				if err != nil {
					return err
				}
				out, err := exec.Command("iptables-save", "-t", "mangle").Output()
				if strings.Contains(string(out), "WSLMTU") {
					return fmt.Errorf("revert left our chains:\n%s", out)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
