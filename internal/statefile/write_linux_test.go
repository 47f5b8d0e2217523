package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A directory others can write to without the sticky bit is refused, with
// an error naming it and the two ways out, and nothing is created in it.
// (The attack it prevents runs for real in internal/metrics'
// TestWriteWithstandsTheSwapAttack.)
func TestReplaceFileRefusesADirectoryOthersCanRearrange(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o775, 0o757} {
		dir := filepath.Join(t.TempDir(), "d")
		os.Mkdir(dir, 0o700)
		os.Chmod(dir, mode)
		path := filepath.Join(dir, "state.json")
		err := ReplaceFile(path, []byte("{}\n"), 0o644, true)
		var unsafe *UnsafeDirError
		if !errors.As(err, &unsafe) {
			t.Fatalf("mode %v: err = %v, want an UnsafeDirError", mode, err)
		}
		for _, want := range []string{path, dir, "sticky", "chmod go-w " + dir, "chmod +t " + dir} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mode %v: %q does not say %q", mode, err, want)
			}
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("mode %v: created %v", mode, ents)
		}
		if _, err := Acquire(dir, LinksLock, time.Millisecond, nil); !errors.As(err, &unsafe) {
			t.Errorf("mode %v: the lock opened: %v", mode, err)
		}
	}
	sticky := filepath.Join(t.TempDir(), "tmp")
	os.Mkdir(sticky, 0o700)
	os.Chmod(sticky, 0o777|os.ModeSticky)
	if err := ReplaceFile(filepath.Join(sticky, "f"), []byte("x\n"), 0o644, true); err != nil {
		t.Errorf("a sticky directory (/tmp's kind) was refused: %v", err)
	}
}

// A symlink at the path is replaced by the file, never written through;
// the mode is the one asked for whatever the umask; what is not a regular
// file or a symlink is left alone with an error naming it.
func TestReplaceFileNeverFollowsASymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep\n"), 0o600)
	path := filepath.Join(dir, "wslmtu.prom")
	os.Symlink(victim, path)
	old := syscall.Umask(0o077)
	wrote, err := ReplaceFileIfChanged(path, []byte("keep\n"), 0o644, false)
	syscall.Umask(old)
	if err != nil || !wrote {
		t.Fatalf("over a symlink: wrote %v, err %v", wrote, err)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Fatalf("%s is %v (%v), want a regular 0644 file", path, fi.Mode(), err)
	}
	if vi, _ := os.Stat(victim); vi.Mode().Perm() != 0o600 {
		t.Errorf("the symlink's target became %v", vi.Mode())
	}
	// Now it holds the data: left alone.
	if wrote, err := ReplaceFileIfChanged(path, []byte("keep\n"), 0o644, false); err != nil || wrote {
		t.Errorf("unchanged: wrote %v, err %v", wrote, err)
	}
	// Same data, another mode: rewritten.
	os.Chmod(path, 0o666)
	if wrote, err := ReplaceFileIfChanged(path, []byte("keep\n"), 0o644, false); err != nil || !wrote {
		t.Errorf("mode 0666: wrote %v, err %v", wrote, err)
	}

	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o644)
	if err := ReplaceFile(fifo, []byte("x"), 0o644, false); err == nil || !strings.Contains(err.Error(), fifo+" is not a regular file (a FIFO)") {
		t.Errorf("over a FIFO: %v", err)
	}
	if fi, _ := os.Lstat(fifo); fi.Mode()&os.ModeNamedPipe == 0 {
		t.Error("the FIFO was replaced")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("left behind: %v", ents)
	}

	// The lock file is never opened through a symlink either.
	os.Symlink(victim, filepath.Join(dir, LinksLock))
	if l, err := Acquire(dir, LinksLock, time.Millisecond, nil); err == nil {
		l.Release()
		t.Error("the lock opened through a symlink")
	}
}
