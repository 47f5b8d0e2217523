package proc

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
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
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Start returns once execve is past its point of no return, not once the
	// arguments are in place: wait for them, and until then the only right
	// answer is "starting".
	starting := "pid " + strconv.Itoa(pid) + " (starting)"
	var got string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if got = Describe(pid); got != starting || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	if want := "pid " + strconv.Itoa(pid) + " (sleep)"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if Alive(pid) {
		t.Error("a reaped process is not alive")
	}
	if got, want := Describe(pid), "pid "+strconv.Itoa(pid); got != want {
		t.Errorf("Describe(reaped) = %q, want %q", got, want)
	}
	if Alive(0) || IsAgent(-1) {
		t.Error("pids ≤ 0 are never alive")
	}
}

func TestDescribeWords(t *testing.T) {
	for _, tt := range []struct {
		args           []string
		alive, kthread bool
		want           string
	}{
		{[]string{"/usr/local/bin/wslmtu", "run", "--state-dir", "/x"}, true, false, "the agent (pid 7: wslmtu run --state-dir /x)"},
		{[]string{"/usr/local/bin/wslmtu", "fix", "--dry-run"}, true, false, "another wslmtu (pid 7: wslmtu fix --dry-run)"},
		{[]string{"/usr/bin/vim", "x"}, true, false, "pid 7 (vim)"},
		// Mid-execve: the new program is in, its arguments not yet.
		{nil, true, false, "pid 7 (starting)"},
		{nil, true, true, "pid 7 (kernel thread)"},
		{nil, false, false, "pid 7"},
	} {
		if got := describe(7, tt.args, tt.alive, tt.kthread); got != tt.want {
			t.Errorf("describe(%q, alive=%v, kthread=%v) = %q, want %q", tt.args, tt.alive, tt.kthread, got, tt.want)
		}
	}
}

func TestReadStatKernelThread(t *testing.T) {
	// kthreadd is pid 2 in the initial pid namespace; elsewhere it is not ours to see.
	b, err := os.ReadFile("/proc/2/comm")
	if err != nil || strings.TrimSpace(string(b)) != "kthreadd" {
		t.Skip("no kthreadd at pid 2 in this pid namespace")
	}
	if got, want := Describe(2), "pid 2 (kernel thread)"; got != want {
		t.Errorf("Describe(2) = %q, want %q", got, want)
	}
	if st, _ := readStat(os.Getpid()); st.flags&pfKthread != 0 {
		t.Error("this process is not a kernel thread")
	}
}
