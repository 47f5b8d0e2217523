package labtest

import (
	"testing"

	"github.com/wslmtu/wslmtu/internal/lab"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// New builds a lab for a test and closes it when the test ends, also when
// it fails; without root it skips the test.
func New(t testing.TB, opts lab.Options) *lab.Lab {
	t.Helper()
	netnstest.RequireRoot(t, "builds the namespace lab (network namespaces, wireguard-go)")
	l, err := lab.New(opts)
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
