package proc

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestIsAgentArgs(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"/usr/local/bin/wslmtu", "run"}, true},
		{[]string{"/usr/bin/wslmtu", "--config", "/etc/x.toml", "run"}, true},
		{[]string{"/tmp/go-build1/wslmtu.test", "run", "--assume-wsl"}, true},
		{[]string{"/usr/local/bin/wslmtu", "fix"}, false},
		{[]string{"/usr/bin/sleep", "run"}, false},
		{[]string{"/usr/local/bin/wslmtu", "--", "run"}, false},
		{[]string{"/usr/local/bin/wslmtu"}, false},
		{nil, false},
	} {
		if got := IsAgentArgs(tt.args); got != tt.want {
			t.Errorf("IsAgentArgs(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestAliveAndDescribe(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Fatal("this process is alive")
	}
	if IsAgent(os.Getpid()) {
		t.Error("a test binary without `run` is not the agent")
	}
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	pid := cmd.Process.Pid
	if got := Describe(pid); !strings.Contains(got, "sleep") {
		t.Errorf("Describe = %q", got)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if Alive(pid) {
		t.Error("a reaped process is not alive")
	}
	if Alive(0) || IsAgent(-1) {
		t.Error("pids ≤ 0 are never alive")
	}
}
