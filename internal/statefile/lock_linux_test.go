package statefile

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A held lock is named to the waiter (fix used to block
// silently), and the wait ends with an error after the timeout.
func TestLockWaitNamesHolderAndTimesOut(t *testing.T) {
	dir := t.TempDir()
	// Another process holds the lock: flock(1) from util-linux.
	cmd := exec.Command("flock", filepath.Join(dir, LinksLock), "sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skipf("needs flock(1): %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(2 * time.Second)
	for {
		l, err := Acquire(dir, LinksLock, time.Millisecond, nil)
		if err != nil {
			break
		}
		l.Release()
		if time.Now().After(deadline) {
			t.Fatal("flock(1) never took the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var told []string
	start := time.Now()
	_, err := Acquire(dir, LinksLock, 500*time.Millisecond, func(holder string) { told = append(told, holder) })
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("err = %v, want a lock timeout", err)
	}
	if took := time.Since(start); took < 500*time.Millisecond || took > 2*time.Second {
		t.Errorf("gave up after %v, want about 500ms", took)
	}
	if len(told) != 1 || !strings.Contains(told[0], "sleep") && !strings.Contains(told[0], "flock") {
		t.Errorf("waiter told %q, want the holder named once", told)
	}
	if !strings.Contains(err.Error(), "pid") {
		t.Errorf("timeout error %q does not name the holder", err)
	}
	// The firewall lock is a different lock: free while the links one is held.
	fw, err := Acquire(dir, FirewallLock, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("firewall lock blocked by the links lock: %v", err)
	}
	fw.Release()
}

// Config and state files are bounded regular files: a FIFO, a device, a
// directory, a huge file or a dangling symlink is an error that names it,
// returned at once.
func TestReadFileRefusesWhatIsNotASmallRegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, MaxFileSize+1), 0o644)
	zero := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", zero)
	dangling := filepath.Join(dir, "dangling")
	os.Symlink(filepath.Join(dir, "nowhere.toml"), dangling)
	ok := filepath.Join(dir, "ok")
	os.WriteFile(ok, []byte("x = 1\n"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(ok, link)
	for path, want := range map[string]string{
		fifo:     "not a regular file (a FIFO)",
		big:      "more than the",
		zero:     "not a regular file (a character device)",
		dir:      "not a regular file (a directory)",
		dangling: "which does not exist",
	} {
		start := time.Now()
		_, err := ReadFile(path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("ReadFile(%s) = %v, want an error naming it and saying %q", path, err, want)
		}
		if time.Since(start) > time.Second {
			t.Errorf("ReadFile(%s) took %v", path, time.Since(start))
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
	if data, err := ReadFile(link); err != nil || string(data) != "x = 1\n" {
		t.Errorf("a symlink to a regular file: %q, %v", data, err)
	}
	var v map[string]int
	if _, err := ReadJSON(zero, &v); err == nil {
		t.Error("ReadJSON of /dev/zero must fail, not read forever")
	}
}
