package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/internal/statefile"
)

// The test binary doubles as the attacker of TestWriteWithstandsTheSwapAttack,
// run as nobody.
func TestMain(m *testing.M) {
	if dir := os.Getenv("WSLMTU_TEST_SWAPPER_DIR"); dir != "" {
		os.Exit(swapper(dir, os.Getenv("WSLMTU_TEST_SWAPPER_VICTIM"), os.Getenv("WSLMTU_TEST_SWAPPER_NAME")))
	}
	os.Exit(m.Run())
}

// swapper is the attack of a local user on a root process that replaces
// name in dir: it plants name as a symlink to victim, and whenever a file
// whose name contains name appears (a writer's temporary file), it replaces
// that file with the same symlink, so that a writer that chmods or renames
// its temporary file by name acts on victim (or leaves the link as name).
// It learns of new files from inotify, as fast as a user can. It runs until
// stdin closes, then prints how many files it saw and how many it swapped.
func swapper(dir, victim, name string) int {
	in, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		fmt.Println("inotify:", err)
		return 1
	}
	if _, err := unix.InotifyAddWatch(in, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		fmt.Println("inotify watch:", err)
		return 1
	}
	// plant makes n the symlink; for a writer's file, only in its place
	// (true: the file was swapped), for name also where there is none.
	plant := func(n string, always bool) bool {
		p := filepath.Join(dir, n)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return false // ours already
		}
		err := os.Remove(p)
		if err != nil && !(always && errors.Is(err, os.ErrNotExist)) {
			return false
		}
		return os.Symlink(victim, p) == nil && err == nil
	}
	plant(name, true)
	fmt.Println("ready")
	go func() {
		io.Copy(io.Discard, os.Stdin)
		fmt.Printf("seen %d swapped %d\n", seen.Load(), swapped.Load())
		os.Exit(0)
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(in, buf)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return 1
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			file := strings.TrimRight(string(raw), "\x00")
			if !strings.Contains(file, name) {
				continue
			}
			if file == name {
				plant(name, true)
				continue
			}
			seen.Add(1)
			if plant(file, false) {
				swapped.Add(1)
			}
		}
	}
}

// The swapper's counts, printed when it is told to stop.
var seen, swapped atomic.Int64

// TestWriteWithstandsTheSwapAttack: a local user swaps the metrics file's
// temporary file for a symlink to a root-only file while root writes
// metrics in a loop. In a world-writable directory without the sticky bit
// the write is refused with an error naming the directory and the fix; in
// a sticky world-writable one (/tmp's kind) every write succeeds, the
// victim's mode never changes and the metrics file is never the attacker's
// symlink. client_golang's WriteToTextfile, which chmods its temporary file
// by name, fails this test: the victim became 0644.
func TestWriteWithstandsTheSwapAttack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attacker runs as nobody")
	}
	// A tree nobody can walk into, outside the test's 0700 temporary dir.
	base, err := os.MkdirTemp("", "wslmtu-swap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o755))
	secret := filepath.Join(base, "secret")
	must(t, os.Mkdir(secret, 0o700))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	attacker := filepath.Join(base, "attacker")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(attacker, data, 0o755))

	for _, tc := range []struct {
		name string
		mode os.FileMode
	}{
		{"world-writable", 0o777},
		{"sticky", 0o777 | os.ModeSticky},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(base, tc.name)
			must(t, os.Mkdir(dir, 0o700))
			must(t, os.Chmod(dir, tc.mode))
			path := filepath.Join(dir, "wslmtu.prom")
			victim := filepath.Join(secret, tc.name)
			must(t, os.WriteFile(victim, []byte("root only\n"), 0o600))
			stop := startSwapper(t, attacker, dir, victim, filepath.Base(path))

			var refused error
			writes := 0
			deadline := time.Now().Add(time.Second)
			for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
				s := sample()
				s.Reconciles = i // a new value: every write replaces the file
				_, err := Write(path, s)
				if fi, serr := os.Stat(victim); serr != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("write %d: the root-only victim is now %v (%v): root followed the attacker's symlink", i, fi.Mode(), serr)
				}
				if err != nil {
					refused = err
					continue
				}
				writes++
				fi, err := os.Lstat(path)
				if err != nil || !fi.Mode().IsRegular() {
					t.Fatalf("write %d: %s is %v (%v), want the regular file just written", i, path, fi.Mode(), err)
				}
				if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o644 {
					t.Fatalf("write %d: %s is uid %d mode %v, want root's 0644", i, path, st.Uid, fi.Mode())
				}
			}
			seen, swapped := stop()
			t.Logf("%d writes; the attacker saw %d temporary files and swapped %d", writes, seen, swapped)
			if got, _ := os.ReadFile(victim); string(got) != "root only\n" {
				t.Errorf("the victim's content changed: %q", got)
			}
			if tc.mode&os.ModeSticky == 0 {
				var unsafe *statefile.UnsafeDirError
				if writes != 0 || !errors.As(refused, &unsafe) {
					t.Fatalf("%d writes into a directory others can rearrange, last error %v; want every write refused", writes, refused)
				}
				for _, want := range []string{dir, "sticky", "chmod go-w " + dir, "chmod +t " + dir} {
					if !strings.Contains(refused.Error(), want) {
						t.Errorf("the refusal %q does not say %q", refused, want)
					}
				}
				return
			}
			if refused != nil {
				t.Fatalf("a write into a sticky directory failed: %v", refused)
			}
			// The attacker was there: it saw the temporary files and could
			// not touch them.
			if seen == 0 || swapped != 0 {
				t.Errorf("the attacker saw %d temporary files and swapped %d; want some seen, none swapped", seen, swapped)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				fi, err := e.Info()
				if err == nil && e.Name() != filepath.Base(path) && fi.Sys().(*syscall.Stat_t).Uid == 0 {
					t.Errorf("left behind in %s: %s", dir, e.Name())
				}
			}
		})
	}
}

// startSwapper runs the attacker as nobody on dir; stop ends it and returns
// its counts. The process is killed when the test ends, even if it fails.
func startSwapper(t *testing.T, binary, dir, victim, name string) (stop func() (seen, swapped int)) {
	t.Helper()
	cmd := exec.Command(binary, "-test.run=^$")
	cmd.Env = []string{"WSLMTU_TEST_SWAPPER_DIR=" + dir, "WSLMTU_TEST_SWAPPER_VICTIM=" + victim, "WSLMTU_TEST_SWAPPER_NAME=" + name}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewScanner(stdout)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("the attacker did not start: %q", out.Text())
	}
	if fi, err := os.Lstat(filepath.Join(dir, name)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the attacker could not plant its symlink at %s: %v", name, err)
	}
	return func() (int, int) {
		stdin.Close()
		var seen, swapped int
		if !out.Scan() {
			t.Fatal("the attacker ended without its counts")
		}
		if _, err := fmt.Sscanf(out.Text(), "seen %d swapped %d", &seen, &swapped); err != nil {
			t.Fatalf("the attacker said %q", out.Text())
		}
		cmd.Wait()
		return seen, swapped
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
