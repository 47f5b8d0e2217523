package windows

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeRunner answers commands from a table keyed by the full command line
// and records every call, like tailscale's router fakes: tests compare the
// whole call list.
type fakeRunner struct {
	mu      sync.Mutex
	answers map[string]fakeAnswer
	calls   []string
	// hook, if set, runs instead of the table for commands it claims.
	hook func(ctx context.Context, cmdline string) (out []byte, err error, handled bool)
	// interfaces answers IPInterfaces (the fake is the InterfaceTable too,
	// so one call list shows the order of everything the host was asked).
	interfaces    []IPInterface
	interfacesErr error
}

// One fake answers both: one call list shows the order of everything asked.
var (
	_ Runner         = (*fakeRunner)(nil)
	_ InterfaceTable = (*fakeRunner)(nil)
)

func (f *fakeRunner) IPInterfaces() ([]IPInterface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "GetIpInterfaceTable(AF_UNSPEC)")
	return slices.Clone(f.interfaces), f.interfacesErr
}

type fakeAnswer struct {
	out []byte
	err error
}

func (f *fakeRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmdline := strings.Join(append([]string{name}, args...), " ")
	f.mu.Lock()
	f.calls = append(f.calls, cmdline)
	hook := f.hook
	a, ok := f.answers[cmdline]
	f.mu.Unlock()
	if hook != nil {
		if out, err, handled := hook(ctx, cmdline); handled {
			return out, err
		}
	}
	if !ok {
		return nil, &RunError{Name: name, Args: args, ExitCode: 1, Output: "fake: unexpected command " + cmdline}
	}
	return a.out, a.err
}

func (f *fakeRunner) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exitErr(code int, output string) error {
	return &RunError{Name: "fake", ExitCode: code, Output: output}
}

func sameCalls(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
