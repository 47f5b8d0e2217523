package lab

import (
	"testing"

	"github.com/wslmtu/wslmtu/internal/netnstest"
)

// NewForTest builds a lab for a test and closes it when the test ends, also
// when it fails; without root it skips the test.
func NewForTest(t testing.TB, opts Options) *Lab {
	t.Helper()
	netnstest.RequireRoot(t, "builds the namespace lab (network namespaces, wireguard-go)")
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
