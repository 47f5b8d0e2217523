package ns_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/internal/ns"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// childEnv makes the test binary the child of TestDoInTheCurrentNamespaceNeedsNoSetns.
const childEnv = "WSLMTU_NS_TEST_CHILD"

// The runtime never ends the main thread: a goroutine ending locked to it
// wedges it instead (still never reused). Holding the main thread here keeps
// Do's goroutines off it, so TestDoDiscardsAThreadItCannotBringBack can see
// its thread end. (An init function runs on the main thread, and main with
// it.)
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if target := os.Getenv(childEnv); target != "" {
		os.Exit(noSysAdminChild(target))
	}
	os.Exit(m.Run())
}

// nsOf names the namespace of a thread, as the kernel does ("net:[ino]").
// It never stops the goroutine (fn of Do may call it), so it returns errors
// as the name.
func nsOf(tid int) string {
	link, err := os.Readlink(fmt.Sprintf("/proc/self/task/%d/ns/net", tid))
	if err != nil {
		return err.Error()
	}
	return link
}

// throwaway opens a fresh namespace; it returns the NetNS and its kernel name.
func throwaway(t *testing.T) (*ns.NetNS, string) {
	t.Helper()
	tmp := netnstest.New(t)
	path := "/var/run/netns/" + tmp.Name
	n, err := ns.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if n.String() != path {
		t.Errorf("String() = %q, want the path %q", n.String(), path)
	}
	want, err := os.Readlink(path)
	if err != nil {
		// A bind mount reads as a file, not a link: ask a process in it.
		out, err := exec.Command("ip", "netns", "exec", tmp.Name, "readlink", "/proc/self/ns/net").Output()
		if err != nil {
			t.Fatal(err)
		}
		want = strings.TrimSpace(string(out))
	}
	return n, want
}

// fn runs in the target namespace, and so does a child process it starts;
// the borrowed thread and the caller's are in their own namespace afterwards.
func TestDoRunsInTheNamespaceAndComesBack(t *testing.T) {
	n, want := throwaway(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	caller := unix.Gettid()
	home := nsOf(caller)
	if home == want {
		t.Fatal("the throwaway namespace is the test's own")
	}
	var tid int
	var inside, child string
	err := n.Do(func() error {
		tid = unix.Gettid()
		inside = nsOf(tid)
		out, err := exec.Command("readlink", "/proc/self/ns/net").Output()
		child = strings.TrimSpace(string(out))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != want || child != want {
		t.Errorf("inside Do: thread in %s, its child in %s, want %s", inside, child, want)
	}
	if tid == caller {
		t.Error("fn ran on the caller's thread, not a goroutine of its own")
	}
	if got := nsOf(tid); got != home {
		t.Errorf("the thread Do borrowed is in %s afterwards, want %s", got, home)
	}
	if got := nsOf(caller); got != home {
		t.Errorf("the caller's thread is in %s afterwards, want %s", got, home)
	}
}

// An error of fn comes back as it is, whether or not the thread switched.
func TestDoReturnsTheErrorOfFn(t *testing.T) {
	n, _ := throwaway(t)
	cur, err := ns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	boom := errors.New("boom")
	for _, target := range []*ns.NetNS{n, cur} {
		ran := false
		err := target.Do(func() error { ran = true; return boom })
		if err != boom || !ran {
			t.Errorf("Do in %s: ran %v, error %v, want %v", target, ran, err, boom)
		}
	}
}

// fn ending its goroutine (t.FailNow from inside Do does) does not leave Do
// waiting forever.
func TestDoReturnsWhenFnEndsItsGoroutine(t *testing.T) {
	n, _ := throwaway(t)
	err := n.Do(func() error { runtime.Goexit(); return nil })
	if err == nil || !strings.Contains(err.Error(), n.String()) || !strings.Contains(err.Error(), "did not return") {
		t.Errorf("Do with fn calling runtime.Goexit = %v", err)
	}
}

// dropSysAdmin takes CAP_SYS_ADMIN (which setns needs) from the calling
// thread's effective set: capabilities belong to a thread, so only this one
// can no longer switch.
// It runs off the test's goroutine, so it returns its error.
func dropSysAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[unix.CAP_SYS_ADMIN/32].Effective &^= 1 << (unix.CAP_SYS_ADMIN % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// When the thread cannot go back (fn took its right to setns), Do says so
// with fn's error, and the thread is never used again: it stays locked and
// ends with Do's goroutine.
func TestDoDiscardsAThreadItCannotBringBack(t *testing.T) {
	n, _ := throwaway(t)
	boom := errors.New("boom")
	var tid int
	err := n.Do(func() error {
		tid = unix.Gettid()
		if err := dropSysAdmin(); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "leaving "+n.String()) {
		t.Fatalf("Do = %v, want boom and EPERM leaving %s", err, n)
	}
	// The thread exits once the goroutine has sent the error and ended.
	task := fmt.Sprintf("/proc/self/task/%d", tid)
	for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d, stuck outside its namespace, still runs", tid)
		}
	}
}

// Enter on a thread already in the namespace does not setns: a thread that
// may not setns (as in the sandboxed unit) still enters its own namespace,
// and fails to enter another, naming it.
func TestEnterTheCurrentNamespaceNeedsNoSetns(t *testing.T) {
	n, _ := throwaway(t)
	cur, err := ns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	errc := make(chan error, 2)
	go func() {
		// Locked for good: the thread without CAP_SYS_ADMIN ends with this goroutine.
		runtime.LockOSThread()
		if err := dropSysAdmin(); err != nil {
			errc <- err
			errc <- err
			return
		}
		errc <- cur.Enter()
		errc <- n.Enter()
	}()
	if err := <-errc; err != nil {
		t.Errorf("Enter into the current namespace without CAP_SYS_ADMIN: %v", err)
	}
	if err := <-errc; !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "entering "+n.String()) {
		t.Errorf("Enter into another namespace without CAP_SYS_ADMIN = %v, want EPERM entering %s", err, n)
	}
}

// Enter moves the goroutine's thread for good: it is in the namespace, and
// so is a child it starts.
func TestEnterStaysInTheNamespace(t *testing.T) {
	n, want := throwaway(t)
	got := make(chan string, 2)
	go func() {
		if err := n.Enter(); err != nil {
			t.Error(err)
			close(got)
			return
		}
		runtime.Gosched() // still on the same thread, in the namespace
		got <- nsOf(unix.Gettid())
		out, _ := exec.Command("readlink", "/proc/self/ns/net").Output()
		got <- strings.TrimSpace(string(out))
	}()
	for _, what := range []string{"the thread", "its child"} {
		if g := <-got; g != want {
			t.Errorf("after Enter %s is in %q, want %s", what, g, want)
		}
	}
}

// Do in the current namespace does not setns: in a process without
// CAP_SYS_ADMIN (as the sandboxed unit is), Do in its own namespace works,
// and Do in another fails naming it. The child is this test binary run by
// setpriv without CAP_SYS_ADMIN in its bounding set.
func TestDoInTheCurrentNamespaceNeedsNoSetns(t *testing.T) {
	n, _ := throwaway(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	cmd := exec.Command(setpriv, "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+n.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child without CAP_SYS_ADMIN: %v\n%s", err, out)
	}
}

// noSysAdminChild is the child of TestDoInTheCurrentNamespaceNeedsNoSetns.
func noSysAdminChild(target string) int {
	fail := func(format string, a ...any) int { fmt.Printf(format+"\n", a...); return 1 }
	cur, err := ns.Current()
	if err != nil {
		return fail("%v", err)
	}
	ran := false
	if err := cur.Do(func() error { ran = true; return nil }); err != nil || !ran {
		return fail("Do in the current namespace without CAP_SYS_ADMIN: ran %v, %v", ran, err)
	}
	other, err := ns.Open(target)
	if err != nil {
		return fail("%v", err)
	}
	ran = false
	err = other.Do(func() error { ran = true; return nil })
	if ran || !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "entering "+target) {
		return fail("Do in %s without CAP_SYS_ADMIN: ran %v, %v; want EPERM entering it (else the test proves nothing)", target, ran, err)
	}
	return 0
}

// A closed NetNS, a missing path and a file that is no network namespace
// give errors naming them, and fn does not run.
func TestBadNamespacesAreNamed(t *testing.T) {
	cur, err := ns.Current()
	if err != nil {
		t.Fatal(err)
	}
	if cur.String() != "the current network namespace" {
		t.Errorf("Current().String() = %q", cur.String())
	}
	if err := cur.Close(); err != nil {
		t.Fatal(err)
	}
	ran := false
	err = cur.Do(func() error { ran = true; return nil })
	if ran || err == nil || err.Error() != "network namespace the current network namespace: closed" {
		t.Errorf("Do after Close: ran %v, %v", ran, err)
	}
	if err := cur.Enter(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Enter after Close: %v", err)
	}
	for path, want := range map[string]string{
		"/var/run/netns/wslmtu-no-such-namespace": "no such file",
		"/proc/self/status":                       "not a namespace file",
		"/proc/self/ns/mnt":                       "not a network namespace",
	} {
		n, err := ns.Open(path)
		if err == nil {
			n.Close()
			t.Errorf("Open(%s) succeeded", path)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%s) = %v, want it named and %q", path, err, want)
		}
	}
}
