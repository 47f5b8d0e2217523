package systemd

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wslmtu/wslmtu/internal/proc"
)

// TestMain lets the test binary stand in for the agent: "<test binary> run"
// waits for SIGTERM like `wslmtu run` does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "run" {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, os.Interrupt)
		<-c
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeAgent is the running test binary, usable as Options.Binary.
func fakeAgent(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkBinary(exe); err != nil {
		t.Skipf("test binary path unusable as agent path: %v", err)
	}
	return exe
}

func wslOptions(t *testing.T, conf string) (Options, *bytes.Buffer) {
	dir := t.TempDir()
	var out bytes.Buffer
	o := Options{
		Binary:        fakeAgent(t),
		IsWSL:         func() bool { return true },
		Out:           &out,
		WSLConf:       filepath.Join(dir, "wsl.conf"),
		LogFile:       filepath.Join(dir, "wslmtu.log"),
		SystemdBooted: func() bool { return false },
	}
	if conf != "" {
		if err := os.WriteFile(o.WSLConf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = stopAgents(o.Binary) })
	return o, &out
}

func TestInstallWSLBootStartsAndUninstallRestores(t *testing.T) {
	orig := "# mine\n[boot]\ncommand = echo hi\n\n[interop]\nappendWindowsPath = false\n"
	o, out := wslOptions(t, orig)
	reverted := false
	o.Revert = func() error { reverted = true; return nil }

	if err := Install(o); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	pids, _ := proc.Agents(o.Binary)
	if len(pids) != 1 {
		t.Fatalf("want 1 agent running, have %v", pids)
	}
	conf, _ := os.ReadFile(o.WSLConf)
	if !HasBootCommand(conf, BootCommand(o.Binary, o.LogFile)) {
		t.Fatalf("boot command not in wsl.conf:\n%s", conf)
	}
	if !strings.Contains(out.String(), "systemd=true") {
		t.Errorf("no advice to enable systemd in:\n%s", out)
	}

	// Installing again restarts the agent and leaves wsl.conf as it is.
	if err := Install(o); err != nil {
		t.Fatalf("second install: %v", err)
	}
	pids2, _ := proc.Agents(o.Binary)
	if len(pids2) != 1 || pids2[0] == pids[0] {
		t.Fatalf("want one restarted agent, had %v, have %v", pids, pids2)
	}
	conf2, _ := os.ReadFile(o.WSLConf)
	if !bytes.Equal(conf, conf2) {
		t.Fatalf("second install changed wsl.conf:\n%s", conf2)
	}

	if err := Uninstall(o); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if pids, _ := proc.Agents(o.Binary); len(pids) != 0 {
		t.Fatalf("agents still running after uninstall: %v", pids)
	}
	if !reverted {
		t.Error("revert not called")
	}
	if got, _ := os.ReadFile(o.WSLConf); string(got) != orig {
		t.Fatalf("wsl.conf not restored:\nwant %q\ngot  %q", orig, got)
	}
}

func TestInstallWSLBootCreatesAndRemovesConf(t *testing.T) {
	o, _ := wslOptions(t, "")
	if err := Install(o); err != nil {
		t.Fatal(err)
	}
	if err := Uninstall(o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(o.WSLConf); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("wsl.conf created by install still there: %v", err)
	}
}

func TestInstallRefusals(t *testing.T) {
	o, _ := wslOptions(t, "[boot]\nsystemd = true\n")
	err := Install(o)
	if err == nil || !strings.Contains(err.Error(), "wsl --shutdown") {
		t.Fatalf("systemd=true without systemd: want advice to restart WSL, got %v", err)
	}
	if pids, _ := proc.Agents(o.Binary); len(pids) != 0 {
		t.Fatal("an agent was started anyway")
	}

	o.IsWSL = func() bool { return false }
	if err := Install(o); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("no systemd, no WSL: want ErrUnsupported, got %v", err)
	}

	o.Binary = filepath.Join(t.TempDir(), "missing")
	if err := Install(o); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("want an error naming the missing binary, got %v", err)
	}
	o.Binary = "relative/wslmtu"
	if err := Install(o); err == nil || !strings.Contains(err.Error(), "relative/wslmtu") {
		t.Fatalf("want an error naming the relative path, got %v", err)
	}
}

func TestUninstallNothingInstalled(t *testing.T) {
	o, out := wslOptions(t, "[network]\nhostname = x\n")
	if err := Uninstall(o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "not installed") {
		t.Errorf("want a 'not installed' message, got %q", out)
	}
}

// The packages' postinst on a host with neither systemd nor WSL (a chroot,
// an image build): nothing to start, nothing written, and no failure.
func TestPackagedInstallWithoutSystemdOrWSL(t *testing.T) {
	o, out := wslOptions(t, "")
	o.Packaged = true
	o.IsWSL = func() bool { return false }
	if err := Install(o); err != nil {
		t.Fatalf("packaged install: %v", err)
	}
	if !strings.Contains(out.String(), "the agent was not started") {
		t.Errorf("no word that the agent was not started:\n%s", out)
	}
	if _, err := os.Stat(o.WSLConf); err == nil {
		t.Error("wsl.conf written off WSL")
	}
	if pids, _ := proc.Agents(o.Binary); len(pids) != 0 {
		t.Errorf("agents started: %v", pids)
	}
	// Without --packaged the same host is refused.
	o.Packaged = false
	if err := Install(o); !errors.Is(err, ErrUnsupported) {
		t.Errorf("plain install off WSL without systemd: %v", err)
	}
}

// The packages' postinst on WSL without systemd: the [boot] fallback as
// `wslmtu install` does it, and an upgrade (postinst again) restarts the
// agent.
func TestPackagedInstallOnWSLUsesBootCommandAndRestarts(t *testing.T) {
	o, out := wslOptions(t, "")
	o.Packaged = true
	if err := Install(o); err != nil {
		t.Fatalf("packaged install: %v\n%s", err, out)
	}
	conf, _ := os.ReadFile(o.WSLConf)
	if !HasBootCommand(conf, BootCommand(o.Binary, o.LogFile)) {
		t.Fatalf("boot command not in wsl.conf:\n%s", conf)
	}
	first, _ := proc.Agents(o.Binary)
	if len(first) != 1 {
		t.Fatalf("want 1 agent running, have %v", first)
	}
	if err := Install(o); err != nil {
		t.Fatalf("packaged install again: %v\n%s", err, out)
	}
	again, _ := proc.Agents(o.Binary)
	if len(again) != 1 || again[0] == first[0] {
		t.Errorf("agents %v → %v: not restarted", first, again)
	}
}
