package firewall

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/internal/ns"
)

// runTimeout bounds one program; restores wait at most 10 s for the lock.
const runTimeout = 30 * time.Second

// Exec runs programs inside one network namespace: a child process is in
// the network namespace of the thread that starts it, so each run starts it
// inside ns.NetNS.Do.
type Exec struct {
	ns *ns.NetNS
}

var (
	_ Runner = (*Exec)(nil)
	_ Opener = Open
)

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
	n, err := ns.Open(path)
	if err != nil {
		return nil, err
	}
	// Tests must never run iptables in the host's namespace: they pass a
	// throwaway one. Checked here, where every command starts.
	if inTestBinary() && !throwaway(n) {
		n.Close()
		return nil, fmt.Errorf("a test may run the firewall tools only in a throwaway namespace (ip netns add), not in %s: "+
			"give fix.Host.NetNS one", n)
	}
	return &Exec{ns: n}, nil
}

// inTestBinary says whether this is a `go test` binary, which registers
// the test.v flag before any test runs. (testing.Testing would say the same,
// but linking package testing into the shipped binaries is not wanted.)
func inTestBinary() bool { return flag.Lookup("test.v") != nil }

// throwaway says whether the namespace is one made by `ip netns add` (the
// test helpers' and the lab's), which the host's own never is.
func throwaway(n *ns.NetNS) bool {
	var want unix.Stat_t
	if err := unix.Fstat(int(n.Handle()), &want); err != nil {
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
	if err := e.ns.Do(cmd.Start); err != nil {
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
	err := e.ns.Do(func() error {
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
// tables and chains, asked over netfilter netlink sockets made inside the
// namespace (no process).
func (e *Exec) Stamp() (Stamp, error) {
	var s Stamp
	err := e.ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		// Before Linux 5.14 there is no cookie: Cookie stays 0.
		s.Cookie, _ = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
		unix.Close(fd)
		if s.Gen, err = nftGeneration(); err != nil {
			return err
		}
		if err := nftTables(&s); err != nil {
			return err
		}
		return nftOurChains(&s)
	})
	return s, err
}

// nfgenmsg is nf_tables' request header: every family, version 0.
type nfgenmsg struct{}

func (nfgenmsg) Len() int          { return 4 }
func (nfgenmsg) Serialize() []byte { return []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0} }

// nftRequest sends one nf_tables request in the calling thread's namespace
// and returns the answers of type answer (a dump's parts up to its end).
func nftRequest(msg, answer uint16, flags int) ([][]byte, error) {
	req := nl.NewNetlinkRequest(int(unix.NFNL_SUBSYS_NFTABLES<<8|msg), flags)
	req.AddData(nfgenmsg{})
	return req.Execute(unix.NETLINK_NETFILTER, unix.NFNL_SUBSYS_NFTABLES<<8|answer)
}

// nftAttrs calls fn for each attribute of an answer (after its nfgenmsg).
func nftAttrs(data []byte, fn func(typ uint16, v []byte)) {
	if len(data) < 4 {
		return
	}
	attrs, err := nl.ParseRouteAttr(data[4:])
	if err != nil {
		return
	}
	for _, a := range attrs {
		fn(a.Attr.Type&^unix.NLA_F_NESTED, a.Value)
	}
}

// nftGeneration asks NFT_MSG_GETGEN for NFTA_GEN_ID.
func nftGeneration() (uint32, error) {
	answers, err := nftRequest(unix.NFT_MSG_GETGEN, unix.NFT_MSG_NEWGEN, 0)
	if err != nil || len(answers) == 0 {
		return 0, fmt.Errorf("nf_tables generation: no answer (%v)", err)
	}
	gen, found := uint32(0), false
	nftAttrs(answers[0], func(typ uint16, v []byte) {
		if typ == unix.NFTA_GEN_ID && len(v) >= 4 {
			gen, found = binary.BigEndian.Uint32(v), true // nf_tables attributes are big-endian
		}
	})
	if !found {
		return 0, errors.New("nf_tables generation: no NFTA_GEN_ID in the answer")
	}
	return gen, nil
}

// nftTables counts the tables of each family (NFT_MSG_GETTABLE, a dump).
func nftTables(s *Stamp) error {
	answers, err := nftRequest(unix.NFT_MSG_GETTABLE, unix.NFT_MSG_NEWTABLE, unix.NLM_F_DUMP)
	if err != nil {
		return fmt.Errorf("nf_tables tables: %w", err)
	}
	for _, a := range answers {
		if len(a) == 0 {
			continue
		}
		switch a[0] { // nfgenmsg.family
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
func nftOurChains(s *Stamp) error {
	answers, err := nftRequest(unix.NFT_MSG_GETCHAIN, unix.NFT_MSG_NEWCHAIN, unix.NLM_F_DUMP)
	if err != nil {
		return fmt.Errorf("nf_tables chains: %w", err)
	}
	for _, a := range answers {
		table, name := "", ""
		nftAttrs(a, func(typ uint16, v []byte) {
			switch typ {
			case unix.NFTA_CHAIN_TABLE:
				table = strings.TrimRight(string(v), "\x00")
			case unix.NFTA_CHAIN_NAME:
				name = strings.TrimRight(string(v), "\x00")
			}
		})
		if len(a) == 0 || table != Mangle || (name != ChainIn && name != ChainOut) {
			continue
		}
		switch a[0] {
		case unix.NFPROTO_IPV4:
			s.IPv4Ours = true
		case unix.NFPROTO_IPV6:
			s.IPv6Ours = true
		}
	}
	return nil
}
