package lab

import (
	"os"
	"testing"
)

// NewForTest builds a lab for a test and closes it when the test ends, also
// when it fails; without root it skips the test.
func NewForTest(t testing.TB, opts Options) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds the namespace lab (network namespaces, wireguard-go)")
	}
	l, err := New(opts)
	if err != nil {
		t.Fatalf("lab.New(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab Close: %v", err)
		}
	})
	return l
}
