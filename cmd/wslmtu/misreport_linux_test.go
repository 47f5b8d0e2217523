package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/netnstest"
)

// A full disk: fix cannot save the revert record before its first step. It
// exits 1, lists every step as not done (it used to print them as if made,
// then the error) and changes nothing. The state directory is a full tmpfs
// mounted in the private mount namespace of `ip netns exec`, gone with it.
func TestFixOnAFullDiskSaysNothingWasDone(t *testing.T) {
	ns := netnstest.NewWSL(t, 1280, 1280)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o755)
	before := hostState(t, ns)
	self, _ := os.Executable()
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "sh", "-c",
		`mount -t tmpfs -o size=4k,mode=0755 wslmtu-full "$STATE" && head -c 4096 /dev/zero > "$STATE/filler"; exec "$@"`,
		"sh", self, "--state-dir", state, "--config", filepath.Join(dir, "wslmtu.toml"), "fix", "--assume-wsl")
	cmd.Env = append(os.Environ(), "WSLMTU_TEST_AS_CLI=1", "STATE="+state)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitFailure {
		t.Fatalf("fix on a full disk: %v, want exit 1:\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "saving the revert record") || !strings.Contains(text, "no space left on device") {
		t.Errorf("the error does not say the record could not be saved for lack of space:\n%s", text)
	}
	notDone := 0
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		switch {
		case strings.HasPrefix(line, "not done: "):
			notDone++
		case strings.HasPrefix(line, "warning: "), strings.HasPrefix(line, "note: "), strings.HasPrefix(line, "wslmtu: "):
		default:
			t.Errorf("printed as if done: %q", line)
		}
	}
	if notDone == 0 || !strings.Contains(text, "not done: eth0: mtu 1280 → 1360") {
		t.Errorf("the plan is not listed as not done:\n%s", text)
	}
	if after := hostState(t, ns); after != before {
		t.Errorf("fix changed the host without a record:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
