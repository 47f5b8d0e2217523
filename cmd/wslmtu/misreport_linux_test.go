package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/ns"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
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
	t.Logf("fix on a full disk:\n%s", text)
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

// probe --timeout bounds the name's resolution too: with a name server that
// never answers (a socket in the namespace that reads nothing), `probe --timeout
// 200ms NAME` gives up in about 200 ms with exit 1 and says why, instead of
// waiting out the resolver's own 2 × 5 s.
func TestProbeTimeoutBoundsNameResolution(t *testing.T) {
	space := netnstest.New(t)
	dir := t.TempDir()
	resolv := filepath.Join(dir, "resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "wslmtu.toml"), nil, 0o644)
	// A name server that reads nothing and answers nothing.
	target, err := ns.Open("/var/run/netns/" + space.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	var deaf net.PacketConn
	if err := target.Do(func() (err error) { deaf, err = net.ListenPacket("udp", "127.0.0.1:53"); return err }); err != nil {
		t.Fatal(err)
	}
	defer deaf.Close()
	self, _ := os.Executable()
	cmd := exec.Command("ip", "netns", "exec", space.Name, "sh", "-c", `mount --bind "$RESOLV" /etc/resolv.conf && exec "$@"`,
		"sh", self, "--config", filepath.Join(dir, "wslmtu.toml"), "probe", "--timeout", "200ms", "wslmtu-probe-test.example.com")
	cmd.Env = append(os.Environ(), "WSLMTU_TEST_AS_CLI=1", "RESOLV="+resolv)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	t.Logf("probe gave up after %s:\n%s", took.Round(time.Millisecond), out)
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitFailure || !strings.Contains(string(out), "no answer from the name servers within 200ms") {
		t.Errorf("probe of a name nobody resolves: %v, want exit 1 saying the name servers did not answer:\n%s", err, out)
	}
	if took > 3*time.Second {
		t.Errorf("probe --timeout 200ms took %s to give up on the name", took.Round(time.Millisecond))
	}
}
