package firewall

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// runTimeout bounds one program; restores wait at most 10 s for the lock.
const runTimeout = 30 * time.Second

// Exec runs programs inside one network namespace. A child process is in
// the network namespace of the thread that starts it, so each run locks a
// fresh goroutine to its thread, setns()es that thread into the namespace,
// starts the child, and sets the thread back; were that to fail, the thread
// stays locked and the runtime ends it with the goroutine instead of
// reusing it in the wrong namespace.
type Exec struct {
	ns   netns.NsHandle
	path string
}

// Open gives the Runner of a network namespace: a path such as
// /var/run/netns/NAME or /proc/PID/ns/net, or "" for the namespace of the
// calling thread, taken now, so that runs from other goroutines (the two
// families run side by side) still happen there.
func Open(path string) (Runner, error) {
	e, err := NewExec(path)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// NewExec is Open with the concrete type.
func NewExec(path string) (*Exec, error) {
	var h netns.NsHandle
	var err error
	if path == "" {
		h, err = netns.Get()
		path = "the current network namespace"
	} else {
		h, err = netns.GetFromPath(path)
	}
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	// Tests must never run iptables in the host's namespace: they pass a
	// throwaway one. Checked here, where every command starts.
	if testing.Testing() && !throwaway(h) {
		h.Close()
		return nil, fmt.Errorf("a test may run the firewall tools only in a throwaway namespace (ip netns add), not in %s: "+
			"give fix.Host.NetNS one", path)
	}
	return &Exec{ns: h, path: path}, nil
}

// throwaway says whether the namespace is one made by `ip netns add` (the
// test helpers' and the lab's), which the host's own never is.
func throwaway(h netns.NsHandle) bool {
	var want unix.Stat_t
	if err := unix.Fstat(int(h), &want); err != nil {
		return false
	}
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/var/run/netns", e.Name()), &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			return true
		}
	}
	return false
}

// Close releases the namespace handle.
func (e *Exec) Close() error { return e.ns.Close() }

// inNS runs fn on a thread inside the namespace.
func (e *Exec) inNS(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("reading this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(e.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering %s: %w", e.path, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leaving %s: %w", e.path, err))
			return // still locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Resolve implements Runner.
func (e *Exec) Resolve(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(path)
}

// Run implements Runner. The program is looked up in PATH before entering
// the namespace (PATH and the files are the same there).
func (e *Exec) Run(name string, args []string, stdin string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	// A multi-call binary picks its applet by argv[0].
	cmd.Args[0] = name
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := e.inNS(cmd.Start); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if err := cmd.Wait(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// NetFile implements Runner: /proc/thread-self/net shows the namespace of
// the reading thread.
func (e *Exec) NetFile(name string) (string, error) {
	var data []byte
	err := e.inNS(func() error {
		var err error
		data, err = os.ReadFile("/proc/thread-self/net/" + name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	return string(data), err
}

// Stamp implements Runner: the namespace's cookie and nf_tables generation,
// asked over a netfilter netlink socket made inside the namespace
// (NFT_MSG_GETGEN; no process).
func (e *Exec) Stamp() (Stamp, error) {
	var s Stamp
	err := e.inNS(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		// Before Linux 5.14 there is no cookie: Cookie stays 0.
		s.Cookie, _ = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
		if s.Gen, err = nftGeneration(fd); err != nil {
			return err
		}
		if err := nftTables(fd, &s); err != nil {
			return err
		}
		return nftOurChains(fd, &s)
	})
	return s, err
}

// nfRequest sends one nf_tables request with an nfgenmsg for all families.
func nfRequest(fd int, msg uint16, flags uint16) error {
	req := make([]byte, unix.SizeofNlMsghdr+4) // nlmsghdr + nfgenmsg{family, version, res_id}
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.NFNL_SUBSYS_NFTABLES<<8|msg)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(req[8:], uint32(msg)+1) // sequence
	return unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// nfAnswers reads one answer, or every part of a dump up to NLMSG_DONE.
func nfAnswers(fd int, dump bool) ([]syscall.NetlinkMessage, error) {
	var out []syscall.NetlinkMessage
	for {
		// A buffer per read: the messages kept point into it.
		buf := make([]byte, 32<<10)
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
						return nil, unix.Errno(-code)
					}
				}
				if !dump {
					return out, nil
				}
				continue
			}
			out = append(out, m)
		}
		if !dump && len(out) > 0 {
			return out, nil
		}
	}
}

// nftTables counts the tables of each family (NFT_MSG_GETTABLE, a dump).
func nftTables(fd int, s *Stamp) error {
	if err := nfRequest(fd, unix.NFT_MSG_GETTABLE, unix.NLM_F_DUMP); err != nil {
		return fmt.Errorf("nf_tables tables: %w", err)
	}
	msgs, err := nfAnswers(fd, true)
	if err != nil {
		return fmt.Errorf("nf_tables tables: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) == 0 {
			continue
		}
		switch m.Data[0] { // nfgenmsg.family
		case unix.NFPROTO_IPV4:
			s.IPv4Tables++
		case unix.NFPROTO_IPV6:
			s.IPv6Tables++
		}
	}
	return nil
}

// nftOurChains looks for our chains in the mangle tables of both families
// (NFT_MSG_GETCHAIN, a dump of every chain's table and name).
func nftOurChains(fd int, s *Stamp) error {
	if err := nfRequest(fd, unix.NFT_MSG_GETCHAIN, unix.NLM_F_DUMP); err != nil {
		return fmt.Errorf("nf_tables chains: %w", err)
	}
	msgs, err := nfAnswers(fd, true)
	if err != nil {
		return fmt.Errorf("nf_tables chains: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		table, name := "", ""
		attributes(m.Data[4:], func(typ uint16, v []byte) {
			switch typ {
			case unix.NFTA_CHAIN_TABLE:
				table = strings.TrimRight(string(v), "\x00")
			case unix.NFTA_CHAIN_NAME:
				name = strings.TrimRight(string(v), "\x00")
			}
		})
		if table != Mangle || (name != ChainIn && name != ChainOut) {
			continue
		}
		switch m.Data[0] {
		case unix.NFPROTO_IPV4:
			s.IPv4Ours = true
		case unix.NFPROTO_IPV6:
			s.IPv6Ours = true
		}
	}
	return nil
}

// attributes calls fn for each netlink attribute {len, type uint16; value},
// each padded to 4 bytes.
func attributes(a []byte, fn func(typ uint16, v []byte)) {
	for len(a) >= 4 {
		l, typ := int(binary.NativeEndian.Uint16(a)), binary.NativeEndian.Uint16(a[2:])&^unix.NLA_F_NESTED
		if l < 4 || l > len(a) {
			return
		}
		fn(typ, a[4:l])
		a = a[min(len(a), (l+3)&^3):]
	}
}

// nftGeneration sends NFT_MSG_GETGEN and reads NFTA_GEN_ID from the answer.
func nftGeneration(fd int) (uint32, error) {
	if err := nfRequest(fd, unix.NFT_MSG_GETGEN, 0); err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	msgs, err := nfAnswers(fd, false)
	if err != nil || len(msgs) == 0 {
		return 0, fmt.Errorf("nf_tables generation: no answer (%v)", err)
	}
	data := msgs[0].Data
	gen, found := uint32(0), false
	attributes(data[min(4, len(data)):], func(typ uint16, v []byte) {
		if typ == unix.NFTA_GEN_ID && len(v) >= 4 {
			gen, found = binary.BigEndian.Uint32(v), true
		}
	})
	if found {
		return gen, nil
	}
	return 0, errors.New("nf_tables generation: no NFTA_GEN_ID in the answer")
}
