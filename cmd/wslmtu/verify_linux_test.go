package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
