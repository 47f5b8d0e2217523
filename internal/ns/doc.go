// Package ns owns switching network namespaces: one type for a network
// namespace (NetNS: opened from a path, or the calling thread's current one)
// and the one place this module calls setns. After CNI's pkg/ns
// (https://github.com/containernetworking/plugins/tree/main/pkg/ns).
// (vishvananda/netlink's NewHandleAt and SubscribeAt switch a thread on
// their own; they get a namespace only in tests and the lab, as root.)
//
// It may import the standard library, golang.org/x/sys/unix and
// github.com/vishvananda/netns only; firewall, lab and agent use it.
//
// # Go's threads and namespaces
//
// A network namespace belongs to an OS thread, not to a goroutine, and Go
// moves goroutines between threads at will. Hence these rules:
//
//   - Do runs its function on a fresh goroutine locked to its OS thread
//     (runtime.LockOSThread), so the function and everything it calls stay on
//     the switched thread. A socket the function creates stays in the
//     namespace and may be used from anywhere afterwards; a child process it
//     starts is in the namespace of the thread that forked it.
//   - Goroutines the function starts do not inherit the namespace: they run
//     on whatever thread the scheduler picks, in that thread's namespace.
//     Since Go 1.10 a locked thread never spawns new threads, so they run in
//     the process's namespace, not necessarily the target
//     (https://github.com/golang/go/issues/20676). The function must do the
//     namespaced work itself (a dialer with a literal address, for example,
//     makes its socket on the calling goroutine) and must not call
//     runtime.UnlockOSThread. Should it end its goroutine (runtime.Goexit,
//     as t.FailNow does), Do returns an error and the thread is discarded.
//   - When switching back fails, the thread is left locked: the goroutine
//     then ends and the runtime ends the thread with it (or, for the main
//     thread, which it never ends, parks it for good) instead of returning a
//     thread in the wrong namespace to the pool
//     (https://github.com/golang/go/issues/20395). So every thread in the pool
//     is in the process's own namespace, which is what Current relies on.
//   - A thread already in the target namespace is not switched: no setns at
//     all. The sandboxed systemd unit (no CAP_SYS_ADMIN,
//     RestrictNamespaces=yes) refuses setns, even into its own namespace,
//     and runs everything in the namespace it started in.
//
// Enter is Do for the rest of a goroutine's life: the goroutine's thread is
// locked and switched, never unlocked, and ends with the goroutine (a worker
// whose iptables children must start in the namespace).
//
// It only works on Linux; on other systems the package is empty.
package ns
