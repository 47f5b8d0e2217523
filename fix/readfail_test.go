package fix

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// A kernel read that fails (netlink refused, the socket closed) stops
// status, fix and revert before they change anything: the error says which
// read failed and wraps the kernel's error, the kernel records no write,
// and the state directory holds the same files, byte for byte.
func TestKernelReadFailureChangesNothing(t *testing.T) {
	readErr := errors.New("netlink receive: operation not permitted (fake)")
	cfg := config.Default()
	for _, verb := range []struct {
		name string
		run  func(Host) error
	}{
		{"plan", func(h Host) error { _, err := h.Plan(cfg); return err }},
		{"fix", func(h Host) error { _, err := h.Fix(cfg); return err }},
		{"revert", func(h Host) error { _, _, err := h.Revert(); return err }},
	} {
		t.Run(verb.name, func(t *testing.T) {
			k := fakekernel.NewWSL(1280, 1280)
			h := hostOn(t, k, "nat")
			// A fix in force, then WSL resets eth0: both fix and revert
			// now have something to write.
			if _, err := h.Fix(cfg); err != nil {
				t.Fatal(err)
			}
			k.Reset("eth0", 1280)
			k.Writes()
			kernel, files := dump(t, k), dirFiles(t, h.Store.Dir)

			k.FailReads(readErr)
			err := verb.run(h)
			if !errors.Is(err, readErr) || !strings.Contains(err.Error(), "listing interfaces: ") {
				t.Errorf("err = %v, want the failed read named and %q wrapped", err, readErr)
			}
			if w := k.Writes(); len(w) != 0 {
				t.Errorf("wrote to the kernel after a failed read: %q", w)
			}
			k.FailReads(nil)
			if got := dump(t, k); got != kernel {
				t.Errorf("kernel changed:\n%s\nwant\n%s", got, kernel)
			}
			if got := dirFiles(t, h.Store.Dir); !maps.Equal(got, files) {
				t.Errorf("state directory changed: %q, want %q", got, files)
			}
		})
	}
}

// dirFiles is every regular file under dir with its contents, by its path
// in dir.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
