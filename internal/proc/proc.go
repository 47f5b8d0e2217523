// Package proc answers questions about other processes from /proc: is this
// pid a wslmtu agent, is it alive, what is it. Every place that needs to
// know "is that the agent?" asks here, so the answer is the same everywhere.
package proc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Args is the command line of a process; nil when it is gone.
func Args(pid int) []string {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// IsAgentArgs says whether a command line is `wslmtu … run …`: a wslmtu
// binary (or its test binary) whose command is run. Global flags may stand
// before the command, so any argument "run" counts.
func IsAgentArgs(args []string) bool {
	if len(args) < 2 || !strings.HasPrefix(filepath.Base(args[0]), "wslmtu") {
		return false
	}
	for _, a := range args[1:] {
		if a == "--" {
			return false
		}
		if a == "run" {
			return true
		}
	}
	return false
}

// IsAgent says whether pid is alive and a wslmtu agent; pids are reused, so a
// recorded pid alone proves nothing.
func IsAgent(pid int) bool { return Alive(pid) && IsAgentArgs(Args(pid)) }

// Alive is false for gone processes and for zombies (a test's own children).
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// Agents lists the agents whose executable is binary (after symlinks). An
// agent whose binary was replaced since shows as "<binary> (deleted)".
func Agents(binary string) ([]int, error) {
	want := binary
	if p, err := filepath.EvalSymlinks(binary); err == nil {
		want = p
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		exe, err := os.Readlink("/proc/" + e.Name() + "/exe")
		if err != nil || strings.TrimSuffix(exe, " (deleted)") != want {
			continue
		}
		if args := Args(pid); len(args) > 0 && IsAgentArgs(append([]string{"wslmtu"}, args[1:]...)) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Describe names a process for a message, with its command line:
// "the agent (pid 42: wslmtu run --state-dir /x)", "another wslmtu (pid
// 43: wslmtu fix)" or "pid 44 (vim)".
func Describe(pid int) string {
	args := Args(pid)
	switch {
	case len(args) == 0:
		return "pid " + strconv.Itoa(pid)
	case strings.HasPrefix(filepath.Base(args[0]), "wslmtu"):
		cmd := strings.Join(append([]string{filepath.Base(args[0])}, args[1:]...), " ")
		if IsAgentArgs(args) {
			return "the agent (pid " + strconv.Itoa(pid) + ": " + cmd + ")"
		}
		return "another wslmtu (pid " + strconv.Itoa(pid) + ": " + cmd + ")"
	}
	return "pid " + strconv.Itoa(pid) + " (" + filepath.Base(args[0]) + ")"
}
