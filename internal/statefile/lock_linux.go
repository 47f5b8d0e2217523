package statefile

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/internal/proc"
)

// Lock names in the state directory. Links and routes (MTUs, route MTUs,
// policy rules and revert.json) and the firewall (our chains and their
// record) are locked apart, so an MTU repair never waits for an iptables run.
const (
	LinksLock    = "lock"
	FirewallLock = "firewall.lock"
)

// DefaultLockTimeout is how long a command waits for another wslmtu: a fix
// or revert holds the lock for milliseconds, so a longer wait means
// something is stuck. The agent holds the links lock for its whole life:
// nobody waits for it (see HeldError).
const DefaultLockTimeout = 30 * time.Second

// waitNotice is how long a lock may be busy before the waiter is told.
const waitNotice = 300 * time.Millisecond

// ErrLockTimeout marks a lock that stayed held for the whole timeout.
var ErrLockTimeout = errors.New("lock timeout")

// HeldError is a lock held by a wslmtu agent. The agent keeps the state
// directory's lock from its start to its end, so waiting for it is
// pointless: Acquire says so at once.
type HeldError struct {
	Path string
	PID  int
	// Holder names it, with its command line (proc.Describe).
	Holder string
}

func (e *HeldError) Error() string { return fmt.Sprintf("%s is held by %s", e.Path, e.Holder) }

// Lock is an exclusive advisory lock on a file in the state directory,
// taken by Acquire and given back by Release (or the end of the process:
// the kernel drops a flock with its last descriptor, so a crashed holder
// leaves nothing stale behind).
type Lock struct{ f *os.File }

// open opens (creating) the lock file name in dir without taking the lock.
func open(dir, name string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	// The lock file is opened like the files written beside it (see
	// ReplaceFile): in a directory nobody else can rearrange, never through
	// a symlink.
	dirfd, err := openDir(dir, filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	defer unix.Close(dirfd)
	fd, err := unix.Openat(dirfd, name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", &os.PathError{Op: "open", Path: filepath.Join(dir, name), Err: err})
	}
	return &Lock{f: os.NewFile(uintptr(fd), filepath.Join(dir, name))}, nil
}

// Acquire opens and takes the lock name in dir, so two wslmtu processes
// never interleave their reads and writes of the host and the records.
// When another process holds it, onWait (if set) is told who after a
// moment, and after timeout (0 means DefaultLockTimeout) Acquire gives up
// with an error naming the holder (matching ErrLockTimeout). A lock held
// by an agent is a *HeldError at once.
func Acquire(dir, name string, timeout time.Duration, onWait func(holder string)) (*Lock, error) {
	l, err := open(dir, name)
	if err != nil {
		return nil, err
	}
	if err := l.lock(timeout, onWait); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

func (l *Lock) lock(timeout time.Duration, onWait func(holder string)) error {
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	start := time.Now()
	told := false
	delay := 200 * time.Microsecond
	for {
		err := unix.Flock(int(l.f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case err == unix.EINTR:
			continue
		case err != unix.EWOULDBLOCK:
			return fmt.Errorf("locking %s: %w", l.f.Name(), err)
		}
		if pid := l.holderPID(); proc.IsAgent(pid) {
			return &HeldError{Path: l.f.Name(), PID: pid, Holder: proc.Describe(pid)}
		}
		waited := time.Since(start)
		if waited >= timeout {
			return fmt.Errorf("%w: %s has been held by %s for %s; is it stuck? (it is released when that process ends)",
				ErrLockTimeout, l.f.Name(), l.Holder(), timeout)
		}
		if !told && waited >= waitNotice && onWait != nil {
			told = true
			onWait(l.Holder())
		}
		time.Sleep(delay)
		delay = min(delay*2, 20*time.Millisecond)
	}
}

// Release gives the lock back (closing the file drops the flock).
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// Holder names the process holding the lock, from /proc/locks (no pid is
// written anywhere, so a crashed holder leaves nothing stale behind).
func (l *Lock) Holder() string {
	if pid := l.holderPID(); pid > 0 {
		return proc.Describe(pid)
	}
	return "another process"
}

// holderPID is the pid of the other process holding the lock; 0 if unknown.
func (l *Lock) holderPID() int {
	var st unix.Stat_t
	if err := unix.Fstat(int(l.f.Fd()), &st); err != nil {
		return 0
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters have "->" after the number.
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != id {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid != os.Getpid() {
			return pid
		}
	}
	return 0
}
