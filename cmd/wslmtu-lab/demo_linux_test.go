package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--eth-mtu", "100"}, "--eth-mtu 100"},
		{[]string{"--tunnel-mtu", "70000"}, "--tunnel-mtu 70000"},
		{[]string{"--ipv6", "--eth-mtu", "1200"}, "--eth-mtu 1200 is below 1280"},
		{[]string{"--timeout", "5s"}, "--timeout 5s"},
		{[]string{"--timeout", "0s"}, "--timeout 0s"},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"extra"}, `"extra"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run(%q) = %d, stderr %q; want %d and a message naming %q", tc.args, code, stderr.String(), exitUsage, tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("run(%q) printed to stdout: %q", tc.args, stdout.String())
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"-h"}, &bytes.Buffer{}, &stderr); code != exitOK || !strings.Contains(stderr.String(), "Usage:") {
		t.Errorf("run(-h) = %d, stderr %q; want 0 and the usage", code, stderr.String())
	}
}

func TestNotRootSaysHowToRun(t *testing.T) {
	defer func(f func() int) { geteuid = f }(geteuid)
	geteuid = func() int { return 1000 }
	var stdout, stderr bytes.Buffer
	if code := run(nil, &stdout, &stderr); code != exitFailure || strings.TrimSpace(stderr.String()) != needRootMsg {
		t.Errorf("run as non-root = %d, stderr %q; want %d and %q", code, stderr.String(), exitFailure, needRootMsg)
	}
	if stdout.Len() != 0 {
		t.Errorf("run as non-root printed to stdout: %q", stdout.String())
	}
}

// TestDemo runs the whole demo once in-process (the lab re-executes this test
// binary for its WireGuard nodes) with 1 s checks, which keeps it near 6 s,
// and checks the closing table and that nothing of the lab is left.
func TestDemo(t *testing.T) {
	netnstest.RequireRoot(t, "creates network namespaces")
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run([]string{"--timeout", "1s"}, &stdout, &stderr)
	t.Logf("demo took %v; output:\n%s", time.Since(start).Round(time.Millisecond), stdout.String())
	if code != exitOK {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr not empty:\n%s", stderr.String())
	}

	want := [][]string{
		{"none (eth0 1280)", "hung", "hung", "hung", "ok", "-"},
		{"raise-outer, scope all (eth0 → 1360)", "ok", "ok", "ok", "hung"},
		{"raise-outer, scope tunnel (eth0 → 1360)", "ok", "ok", "ok", "ok"},
		{"lower-tunnel (tailscale0 → 1200)", "ok", "ok", "too big (1172 ok)", "ok"},
		{"mss-clamp (1160/1140)", "ok", "ok", "hung (TCP only)", "ok"},
	}
	got := tableRows(t, stdout.String())
	if len(got) != len(want) {
		t.Fatalf("table has %d rows, want %d:\n%q", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if len(g) != 6 {
			t.Errorf("row %d = %q, want 6 columns", i, g)
			continue
		}
		for j, cell := range w {
			// Times vary: "ok 12ms" matches "ok".
			if g[j] != cell && !(cell == "ok" && strings.HasPrefix(g[j], "ok ")) {
				t.Errorf("row %d column %d = %q, want %q (row %q)", i, j, g[j], cell, g)
			}
		}
		if i > 0 {
			if _, err := time.ParseDuration(g[5]); err != nil {
				t.Errorf("row %d: fix took %q is not a duration", i, g[5])
			}
		}
	}

	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	if mine := fmt.Sprintf("wslmtu-%d-", os.Getpid()); strings.Contains(string(out), mine) {
		t.Errorf("namespaces %s* left behind:\n%s", mine, out)
	}
	if left, _ := filepath.Glob(fmt.Sprintf("%s/%s%d-*", os.TempDir(), stateDirPrefix, os.Getpid())); len(left) > 0 {
		t.Errorf("state directories left behind: %v", left)
	}
}

var columns = regexp.MustCompile(` {2,}`)

// tableRows returns the cells of the closing table's body.
func tableRows(t *testing.T, out string) [][]string {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, "remedy ") {
			continue
		}
		var rows [][]string
		for _, l := range lines[i+1:] {
			if strings.HasPrefix(l, "download, upload and ping") || strings.TrimSpace(l) == "" {
				return rows
			}
			rows = append(rows, columns.Split(strings.TrimSpace(l), -1))
		}
		return rows
	}
	t.Fatalf("no table in the output")
	return nil
}
