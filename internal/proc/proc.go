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
	st, ok := readStat(pid)
	return ok && st.state != 'Z'
}

// stat is the part of /proc/PID/stat this package needs.
type stat struct {
	state byte
	flags uint64
}

// pfKthread is PF_KTHREAD from include/linux/sched.h: kernel threads have no
// command line at all, so an empty one means "starting" only for the others.
const pfKthread = 0x00200000

func readStat(pid int) (stat, bool) {
	if pid <= 0 {
		return stat{}, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	// The command name may hold spaces and parentheses: the fields start
	// after the last ')'. Then: state ppid pgrp session tty_nr tpgid flags.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, true
	}
	f := strings.Fields(s[i+1:])
	var st stat
	if len(f) > 0 && len(f[0]) > 0 {
		st.state = f[0][0]
	}
	if len(f) > 6 {
		st.flags, _ = strconv.ParseUint(f[6], 10, 64)
	}
	return st, true
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
	st, alive := readStat(pid)
	alive = alive && st.state != 'Z'
	return describe(pid, Args(pid), alive, st.flags&pfKthread != 0)
}

// describe is Describe over what /proc said. A live process with an empty
// command line is in the middle of execve: the kernel installs the new
// program's memory before it copies the arguments in (fs/exec.c,
// begin_new_exec then the binfmt loader), and exec.Cmd.Start can return in
// between. Its old name would be a guess, so it is called "starting".
func describe(pid int, args []string, alive, kthread bool) string {
	p := "pid " + strconv.Itoa(pid)
	switch {
	case len(args) == 0 && alive && kthread:
		return p + " (kernel thread)"
	case len(args) == 0 && alive:
		return p + " (starting)"
	case len(args) == 0:
		return p
	case strings.HasPrefix(filepath.Base(args[0]), "wslmtu"):
		cmd := strings.Join(append([]string{filepath.Base(args[0])}, args[1:]...), " ")
		if IsAgentArgs(args) {
			return "the agent (" + p + ": " + cmd + ")"
		}
		return "another wslmtu (" + p + ": " + cmd + ")"
	}
	return p + " (" + filepath.Base(args[0]) + ")"
}
