package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/testenv/labtest"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// verify refuses what names no host, a bad timeout, and having nothing to
// verify, as bad input (exit 2) naming the value, before any socket or
// netlink read: so this runs without root.
func TestVerifyBadInputExit2(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "wslmtu.toml")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"10.0.0.1:80"}, `"10.0.0.1:80" is neither an IP address nor a host name`},
		{[]string{"0.0.0.0"}, `"0.0.0.0" names no single host`},
		{[]string{"peer", "peer"}, `"peer" is listed twice`},
		{[]string{"100.64.0.2", "--timeout", "1ms"}, "--timeout"},
		{nil, "no host to verify: name one, or set verify in " + cfg},
	} {
		args := append([]string{"verify", "--config", cfg}, tc.args...)
		out, code := runInProcess(t, args...)
		if code != exitUsage || !strings.Contains(out, tc.want) {
			t.Errorf("wslmtu %s: exit %d, output %q; want exit %d saying %q", strings.Join(args, " "), code, out, exitUsage, tc.want)
		}
	}
}

// `wslmtu verify` in the lab's WSL namespace: the tunnel peer's path is
// broken before the fix (exit 1, "not fixed") and ok after it (exit 0).
func TestVerifyInTheLab(t *testing.T) {
	netnstest.RequireRoot(t, "builds the namespace lab")
	l := labtest.New(t, lab.Options{CorporateVPN: true})
	cfg := filepath.Join(t.TempDir(), "wslmtu.toml")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	peer, corp := l.PeerTunnelIP(false).String(), l.CorporateServerIP(false).String()
	inWSL := func(args ...string) (string, int) {
		var out string
		var code int
		l.DoWSL(func() error {
			out, code = runInProcess(t, append([]string{"--config", cfg, "--assume-wsl", "--state-dir", state}, args...)...)
			return nil
		})
		return out, code
	}
	out, code := inWSL("verify", peer, corp)
	if code != exitFailure || !strings.Contains(out, "likely side not fixed") || !strings.Contains(out, "crossed     1216 bytes") {
		t.Errorf("before the fix: exit %d\n%s", code, out)
	}
	if out, code := inWSL("fix"); code != 0 {
		t.Fatalf("fix: exit %d\n%s", code, out)
	}
	out, code = inWSL("verify", peer, corp)
	if code != 0 || strings.Count(out, "verdict     ok") != 2 || !strings.Contains(out, "interface   tailscale0") {
		t.Errorf("after the fix: exit %d\n%s", code, out)
	}
}
