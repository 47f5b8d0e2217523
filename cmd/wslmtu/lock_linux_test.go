package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// hostState is everything wslmtu may change in ns, as ip prints it (the
// local tables are the kernel's: IPv6 link-local addresses appear there
// when their duplicate address detection ends).
func hostState(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"-d", "link", "show"},
		{"-4", "rule", "show"}, {"-6", "rule", "show"},
		{"-4", "route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"},
	} {
		b.WriteString("$ ip " + strings.Join(args, " ") + "\n")
		for _, line := range strings.Split(ns.Run(t, "ip", args...), "\n") {
			if !strings.Contains(line, "table local") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// wslmtuWithin is wslmtu with a deadline: a second agent that does not
// stop must not hang the test.
func wslmtuWithin(t *testing.T, ns *netnstest.NS, dir string, timeout time.Duration, args ...string) (cliResult, time.Duration) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"netns", "exec", ns.Name, self,
		"--state-dir", filepath.Join(dir, "state"), "--config", filepath.Join(dir, "other.toml")}, args...)
	cmd := exec.CommandContext(ctx, "ip", full...)
	cmd.Env = append(os.Environ(), "WSLMTU_TEST_AS_CLI=1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("wslmtu %s still ran after %s:\n%s", strings.Join(args, " "), timeout, out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{out: string(out), code: code}, took
}

// The agent holds the state directory's lock for its whole life. A second
// agent on the same state directory (with another outer_scope, which used
// to leave the host half of each), a fix and a revert each exit 1 at once
// naming the agent (pid and command line), and change nothing: the links,
// rules and routes, and the revert record, are as before. Read-only
// commands still work.
func TestOneAgentPerStateDirectory(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	a := startAgent(t, ns, "")
	waitMTU(t, ns, "eth0", is(1360), 2*time.Second)
	os.WriteFile(filepath.Join(a.dir, "other.toml"), []byte("outer_scope = \"all\"\nmtu_strategy = \"lower-tunnel\"\n"), 0o644)
	record := filepath.Join(a.dir, "state", "revert.json")
	recordBefore, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	before := hostState(t, ns)
	holder := "the agent (pid " + strconv.Itoa(a.pid(t)) + ": wslmtu.test run"

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--assume-wsl"}, []string{"one agent at a time", "systemctl stop wslmtu"}},
		{[]string{"fix", "--assume-wsl"}, []string{"keeps this host", config.DefaultPath, "sudo systemctl reload wslmtu",
			"kill -HUP " + strconv.Itoa(a.pid(t)), "fix --dry-run"}},
		{[]string{"revert"}, []string{"keeps this host", "sudo systemctl stop wslmtu", "uninstall --revert"}},
	} {
		r, took := wslmtuWithin(t, ns, a.dir, 20*time.Second, tc.args...)
		t.Logf("wslmtu %s (exit %d after %s):\n%s", strings.Join(tc.args, " "), r.code, took.Round(time.Millisecond), r.out)
		if r.code != exitFailure || !strings.Contains(r.out, holder) {
			t.Errorf("wslmtu %s: exit %d, want 1 with the holder named (%q):\n%s", strings.Join(tc.args, " "), r.code, holder, r.out)
		}
		for _, want := range tc.want {
			if !strings.Contains(r.out, want) {
				t.Errorf("wslmtu %s does not say %q:\n%s", strings.Join(tc.args, " "), want, r.out)
			}
		}
		// Not after the lock's timeout: nobody waits for an agent.
		if took > 5*time.Second {
			t.Errorf("wslmtu %s took %s to give up", strings.Join(tc.args, " "), took)
		}
		if after := hostState(t, ns); after != before {
			t.Fatalf("wslmtu %s changed the host:\nbefore:\n%s\nafter:\n%s", strings.Join(tc.args, " "), before, after)
		}
		if got, _ := os.ReadFile(record); string(got) != string(recordBefore) {
			t.Fatalf("wslmtu %s changed the revert record:\n%s\n→\n%s", strings.Join(tc.args, " "), recordBefore, got)
		}
	}

	// What only reads still works while the agent runs.
	for _, args := range [][]string{{"fix", "--dry-run", "--assume-wsl"}, {"status", "--assume-wsl"}} {
		if r, _ := wslmtuWithin(t, ns, a.dir, 20*time.Second, args...); r.code != 0 && r.code != exitUnhealthy {
			t.Errorf("wslmtu %s while the agent runs: exit %d:\n%s", strings.Join(args, " "), r.code, r.out)
		}
	}
	// The first agent still keeps the host.
	setMTU(t, ns, "eth0", 1280)
	waitMTU(t, ns, "eth0", is(1360), 2*time.Second)
}
