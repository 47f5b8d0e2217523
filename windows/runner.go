package windows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs one external program and returns its standard output. It is the
// only way this package touches the host, so tests replace it with a fake that
// records the calls.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// RunError is returned by ExecRunner when a program ran and exited non-zero.
// Callers look at ExitCode and Output (stdout+stderr) because Windows tools
// report failures in either stream and the exit code is the only part that
// is not localized.
type RunError struct {
	Name     string
	Args     []string
	ExitCode int
	Output   string // stdout followed by stderr, already decoded if it was UTF-16
}

func (e *RunError) Error() string {
	msg := strings.TrimSpace(e.Output)
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if msg == "" {
		return fmt.Sprintf("%s %s: exit code %d", e.Name, strings.Join(e.Args, " "), e.ExitCode)
	}
	return fmt.Sprintf("%s %s: exit code %d: %s", e.Name, strings.Join(e.Args, " "), e.ExitCode, msg)
}

// ExecRunner runs programs with os/exec. It works on Windows and, through WSL
// interop, on Linux (name "netsh.exe", "wsl.exe").
type ExecRunner struct{}

var _ Runner = ExecRunner{}

// Run implements Runner. On a non-zero exit it returns the stdout it got and a
// *RunError carrying both streams.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		out := DecodeText(stdout.Bytes()) + DecodeText(stderr.Bytes())
		return stdout.Bytes(), &RunError{Name: name, Args: args, ExitCode: ee.ExitCode(), Output: out}
	}
	return stdout.Bytes(), fmt.Errorf("run %s: %w", name, err)
}

// exitCode returns the exit code carried by err, or -1 when err is not a
// *RunError (the program could not be started at all).
func exitCode(err error) int {
	var re *RunError
	if errors.As(err, &re) {
		return re.ExitCode
	}
	return -1
}

// errorText is everything a failed run said, for matching known messages.
func errorText(out []byte, err error) string {
	s := DecodeText(out)
	var re *RunError
	if errors.As(err, &re) {
		s += "\n" + re.Output
	} else if err != nil {
		s += "\n" + err.Error()
	}
	return s
}
