package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runInProcess runs the CLI in this process (a fresh tree, see run) and
// returns what it printed and its exit code.
func runInProcess(t *testing.T, args ...string) (string, int) {
	t.Helper()
	r := run(t, args...)
	return r.out, r.code
}

// probe refuses what names no single host, and a round timeout out of
// bounds, as bad input (exit 2) naming the value, before opening a socket:
// so this runs without root.
func TestProbeBadInputExit2(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "wslmtu.toml")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, timeout, want string
	}{
		{"::", "1s", "bad host: :: is the unspecified address"},
		{"0.0.0.0", "1s", "bad host: 0.0.0.0 is the unspecified address"},
		{"224.0.0.251", "1s", "bad host: 224.0.0.251 is a multicast address"},
		{"ff02::1", "1s", "bad host: ff02::1 is a multicast address"},
		{"255.255.255.255", "1s", "bad host: 255.255.255.255 is the broadcast address"},
		{"fe80::1", "1s", "bad host: fe80::1 is link-local without a zone"},
		{"127.0.0.1", "1ns", "--timeout: bad timeout 1ns: a round waits from 10ms to 30s"},
		{"127.0.0.1", "9ms", "--timeout: bad timeout 9ms"},
		{"127.0.0.1", "0s", "--timeout: bad timeout 0s"},
		{"127.0.0.1", "2m", "--timeout: bad timeout 2m0s"},
	} {
		out, code := runInProcess(t, "probe", tc.host, "--timeout", tc.timeout, "--config", cfg)
		if code != exitUsage || !strings.Contains(out, tc.want) {
			t.Errorf("probe %s --timeout %s: exit %d, output %q; want exit %d saying %q", tc.host, tc.timeout, code, out, exitUsage, tc.want)
		}
	}
}
