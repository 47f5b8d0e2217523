package ns

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// currentName names the namespace Current opened, in errors.
const currentName = "the current network namespace"

// NetNS is one network namespace, held open by a file descriptor: it stays
// the same namespace whatever happens to its path later. Its methods may be
// called from any goroutine; Close must not race with the others.
type NetNS struct {
	h    netns.NsHandle
	name string // the path, or currentName: what errors call it
}

// Open opens the network namespace at path: /var/run/netns/NAME (made by
// `ip netns add NAME`) or /proc/PID/ns/net. "" means Current. A path that
// is not a network namespace is refused here, naming the path, rather than
// at the first Do.
func Open(path string) (*NetNS, error) {
	if path == "" {
		return Current()
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	if err := isNetNS(h); err != nil {
		h.Close()
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	return &NetNS{h: h, name: path}, nil
}

// Current opens the namespace of the calling thread: the process's own
// unless the goroutine is locked to a thread that Enter or Do switched.
func Current() (*NetNS, error) {
	h, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", currentName, err)
	}
	return &NetNS{h: h, name: currentName}, nil
}

// isNetNS refuses a file that is not a namespace (on nsfs, Linux 3.19 or
// later) and a namespace of another kind (/proc/PID/ns/mnt).
func isNetNS(h netns.NsHandle) error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(h), &fs); err != nil {
		return err
	}
	if fs.Type != unix.NSFS_MAGIC {
		return errors.New("not a namespace file")
	}
	// NS_GET_NSTYPE is Linux 4.11 or later; before, ENOTTY: taken on trust.
	typ, err := unix.IoctlRetInt(int(h), unix.NS_GET_NSTYPE)
	if err == nil && typ != unix.CLONE_NEWNET {
		return errors.New("not a network namespace")
	}
	return nil
}

// String is what errors call the namespace: its path, or "the current
// network namespace".
func (n *NetNS) String() string { return n.name }

// Handle is the open handle, for netlink (netlink.NewHandleAt, NsFd); valid
// until Close.
func (n *NetNS) Handle() netns.NsHandle { return n.h }

// Close releases the handle; Do and Enter fail afterwards. The namespace
// itself lives on while anything else holds it.
func (n *NetNS) Close() error {
	if !n.h.IsOpen() {
		return nil
	}
	err := n.h.Close()
	n.h = netns.None()
	return err
}

func (n *NetNS) usable() error {
	if !n.h.IsOpen() {
		return fmt.Errorf("network namespace %s: closed", n.name)
	}
	return nil
}

// Do runs fn on an OS thread in the namespace and returns fn's error, or
// why the thread could not be switched (fn then does not run) or switched
// back. fn runs on a goroutine of its own, locked to its thread; a thread
// already in the namespace is not switched (see the package doc).
func (n *NetNS) Do(fn func() error) error {
	if err := n.usable(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		returned := false
		defer func() {
			if !returned {
				// fn called runtime.Goexit (t.FailNow does): the thread,
				// maybe still in the namespace, ends with this goroutine.
				errc <- fmt.Errorf("in %s: the function did not return (runtime.Goexit)", n.name)
			}
		}()
		err := n.doLocked(fn)
		returned = true
		errc <- err
	}()
	return <-errc
}

// doLocked is Do on the locked thread: it unlocks the thread unless the
// thread may be left in the wrong namespace.
func (n *NetNS) doLocked(fn func() error) error {
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading this thread's network namespace: %w", err)
	}
	defer orig.Close()
	if orig.Equal(n.h) {
		ferr := fn()
		runtime.UnlockOSThread()
		return ferr
	}
	if err := netns.Set(n.h); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering %s: %w", n.name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Still locked: the thread ends with this goroutine.
		return errors.Join(ferr, fmt.Errorf("leaving %s: %w", n.name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Enter switches the calling goroutine's thread into the namespace for the
// rest of the goroutine's life: the thread stays locked to it and ends with
// it. A thread already there is locked but not switched. On an error the
// thread is unlocked and in the namespace it was in.
func (n *NetNS) Enter() error {
	if err := n.usable(); err != nil {
		return err
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading this thread's network namespace: %w", err)
	}
	defer orig.Close()
	if orig.Equal(n.h) {
		return nil
	}
	if err := netns.Set(n.h); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering %s: %w", n.name, err)
	}
	return nil
}
