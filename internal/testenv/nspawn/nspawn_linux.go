package nspawn

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// CacheDir holds the rootfs, built once per machine.
const CacheDir = "/var/cache/wslmtu-test"

const (
	suite    = "bookworm"
	mirror   = "http://deb.debian.org/debian"
	packages = "systemd,systemd-sysv,iproute2,iptables,dbus"
)

// RootFS returns the cached Debian rootfs, building it with debootstrap the
// first time (a minute or two). It is built in a temporary directory and
// renamed into place, under a lock, so an interrupted or concurrent build
// never leaves a half rootfs behind.
func RootFS() (string, error) {
	dir := filepath.Join(CacheDir, "rootfs-"+suite)
	if ok, err := complete(dir); err != nil || ok {
		return dir, err
	}
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if ok, err := complete(dir); err != nil || ok {
		return dir, err // another process built it meanwhile
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("no rootfs at %s and no debootstrap to build it: %w", dir, err)
	}
	// Leftovers of interrupted builds.
	old, _ := filepath.Glob(dir + ".tmp.*")
	for _, o := range old {
		_ = os.RemoveAll(o)
	}
	tmp, err := os.MkdirTemp(CacheDir, "rootfs-"+suite+".tmp.")
	if err != nil {
		return "", err
	}
	out, err := exec.Command("debootstrap", "--variant=minbase", "--include="+packages, suite, tmp, mirror).CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("debootstrap: %v\n%s", err, tail(out, 2000))
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	return dir, nil
}

func complete(dir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dir, "usr/lib/systemd/systemd"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Container is a booted systemd in a systemd-nspawn container with its own
// (empty) network namespace, running on a throwaway overlay of the rootfs.
type Container struct {
	Name string
	// Root is the container's / as seen from the host: files written there
	// appear inside.
	Root string
	// PID is the host PID of the container's systemd (PID 1 inside).
	PID int
	// BootTime is from starting systemd-nspawn until systemd reported
	// running or degraded.
	BootTime time.Duration

	tmp     string
	mounted bool
	cgroups []string
	cmd     *exec.Cmd
	waited  chan struct{}
	log     *bytes.Buffer
	logMu   *sync.Mutex
	once    sync.Once
	closeEr error
}

// Boot starts a container for a test: it skips the test when not root or
// when systemd-nspawn is missing, and removes everything in t.Cleanup.
func Boot(t testing.TB) *Container {
	t.Helper()
	netnstest.RequireRoot(t, "boots systemd in systemd-nspawn")
	for _, tool := range []string{"systemd-nspawn", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	root, err := RootFS()
	if err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	c, err := Start(root)
	if c != nil {
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("closing container %s: %v", c.Name, err)
			}
		})
	}
	if err != nil {
		t.Fatalf("booting container: %v", err)
	}
	return c
}

// Start boots a container on an overlay of rootfs (or a copy when overlayfs
// cannot be mounted there). The caller must Close it, also on error when the
// returned Container is not nil.
func Start(rootfs string) (*Container, error) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	c := &Container{
		Name:   "wslmtu-test-" + hex.EncodeToString(rnd[:]),
		log:    &bytes.Buffer{},
		logMu:  &sync.Mutex{},
		waited: make(chan struct{}),
	}
	tmp, err := os.MkdirTemp("", "wslmtu-nspawn-")
	if err != nil {
		return nil, err
	}
	c.tmp = tmp
	c.Root = filepath.Join(tmp, "root")
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			return c, err
		}
	}
	opts := "lowerdir=" + rootfs + ",upperdir=" + filepath.Join(tmp, "upper") + ",workdir=" + filepath.Join(tmp, "work")
	if err := syscall.Mount("overlay", c.Root, "overlay", 0, opts); err == nil {
		c.mounted = true
	} else if out, err := exec.Command("cp", "-a", "--reflink=auto", rootfs+"/.", c.Root).CombinedOutput(); err != nil {
		return c, fmt.Errorf("copying rootfs: %v: %s", err, out)
	}

	start := time.Now()
	nspawn := []string{"systemd-nspawn", "-D", c.Root, "-M", c.Name, "-b",
		"--register=no", "--keep-unit", "--private-network", "--console=read-only"}
	c.cgroups = makeCgroups(c.Name)
	c.cmd = exec.Command(nspawn[0], nspawn[1:]...)
	if len(c.cgroups) > 0 {
		// Enter the container's own cgroups before nspawn starts: it reads
		// its cgroup once, at start.
		script := `for d in "$@"; do case $d in --) break;; esac; echo $$ > "$d/cgroup.procs" || exit 1; done; ` +
			`while [ "$1" != -- ]; do shift; done; shift; exec "$@"`
		args := append([]string{"-c", script, "sh"}, c.cgroups...)
		args = append(append(args, "--"), nspawn...)
		c.cmd = exec.Command("sh", args...)
	}
	w := &lockedWriter{mu: c.logMu, w: c.log}
	c.cmd.Stdout, c.cmd.Stderr = w, w
	// The container must not get the test's signals (Ctrl-C goes to Close).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		close(c.waited)
		return c, fmt.Errorf("systemd-nspawn: %w", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.waited) }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if c.PID, err = c.findInit(ctx); err != nil {
		return c, err
	}
	// is-system-running --wait returns once boot is finished.
	for {
		out, _ := c.ExecContext(ctx, "systemctl", "is-system-running", "--wait")
		state := strings.TrimSpace(string(out))
		if state == "running" || state == "degraded" {
			break
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("container did not finish booting (state %q)\n%s", state, c.Log())
		case <-c.waited:
			return c, fmt.Errorf("systemd-nspawn exited during boot\n%s", c.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	c.BootTime = time.Since(start)
	return c, nil
}

// findInit finds the container's systemd: nspawn is a child subreaper, so
// that is its child whose PID in the inner namespace is 1.
func (c *Container) findInit(ctx context.Context) (int, error) {
	parent := strconv.Itoa(c.cmd.Process.Pid)
	for {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			st, err := os.ReadFile("/proc/" + e.Name() + "/status")
			if err != nil {
				continue
			}
			var ppid, nspid string
			for _, l := range strings.Split(string(st), "\n") {
				if v, ok := strings.CutPrefix(l, "PPid:"); ok {
					ppid = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
					nspid = strings.Join(strings.Fields(v), " ")
				}
			}
			if ppid == parent && strings.HasSuffix(nspid, " 1") {
				return strconv.Atoi(e.Name())
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("container init not found\n%s", c.Log())
		case <-c.waited:
			return 0, fmt.Errorf("systemd-nspawn exited\n%s", c.Log())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Command is a command run inside all the container's namespaces.
func (c *Container) Command(ctx context.Context, args ...string) *exec.Cmd {
	a := append([]string{"-t", strconv.Itoa(c.PID), "-a", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", a...)
	// A clean environment like a root shell inside would have; the host's
	// PATH may not exist in the container.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	return cmd
}

// ExecContext runs a command inside the container and returns its combined
// output.
func (c *Container) ExecContext(ctx context.Context, args ...string) ([]byte, error) {
	out, err := c.Command(ctx, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in container: %s: %w: %s", strings.Join(args, " "), err, tail(out, 4000))
	}
	return out, nil
}

// Exec runs a command inside the container with a one-minute limit.
func (c *Container) Exec(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.ExecContext(ctx, args...)
}

// Run is Exec that fails the test on error.
func (c *Container) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// AddWSLNetwork gives the container's network namespace the shape of a
// WSL2 distro: eth0 at 1280 with the default route (a veth whose other end,
// hyperv0, stays inside) and tailscale0, a tun at 1280. The container has
// no /dev/net/tun, so the tun is made from the host, in its namespace.
func (c *Container) AddWSLNetwork(t testing.TB) {
	t.Helper()
	c.Run(t, "sh", "-c", "ip link add eth0 mtu 1280 type veth peer name hyperv0 mtu 1500 && "+
		"ip addr add 172.20.0.2/24 dev eth0 && ip link set hyperv0 up && ip link set eth0 up && "+
		"ip route add default via 172.20.0.1 dev eth0")
	ns := []string{"-t", strconv.Itoa(c.PID), "-n", "--"}
	for _, args := range [][]string{
		{"ip", "tuntap", "add", "dev", "tailscale0", "mode", "tun"},
		{"ip", "link", "set", "dev", "tailscale0", "mtu", "1280", "up"},
	} {
		if out, err := exec.Command("nsenter", append(ns, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
}

// CopyIn copies a host file into the container at dst (an absolute path
// inside), keeping its permission bits.
func (c *Container) CopyIn(src, dst string) error {
	if !filepath.IsAbs(dst) {
		return fmt.Errorf("container path %q must be absolute", dst)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	target := filepath.Join(c.Root, dst)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Log is systemd-nspawn's output (the container's console) so far.
func (c *Container) Log() string {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return string(tail(c.log.Bytes(), 8000))
}

// Close powers the container off (killing it if it does not stop within a
// few seconds) and removes its overlay and temporary directories.
func (c *Container) Close() error {
	c.once.Do(func() { c.closeEr = c.close() })
	return c.closeEr
}

func (c *Container) close() error {
	var errs []error
	if c.cmd != nil && c.cmd.Process != nil {
		select {
		case <-c.waited:
		default:
			if c.PID > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = c.Command(ctx, "systemctl", "poweroff", "--no-block").Run()
				cancel()
			}
			select {
			case <-c.waited:
			case <-time.After(10 * time.Second):
				// Killing PID 1 of the namespace kills everything in it.
				if c.PID > 0 {
					_ = syscall.Kill(c.PID, syscall.SIGKILL)
				}
				_ = c.cmd.Process.Kill()
				<-c.waited
			}
		}
	}
	removeCgroups(c.cgroups)
	if c.mounted {
		if err := syscall.Unmount(c.Root, 0); err != nil {
			// Something still holds it (a process of the test): detach it.
			if err2 := syscall.Unmount(c.Root, syscall.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %v", c.Root, err))
			}
		}
	}
	if c.tmp != "" {
		if err := os.RemoveAll(c.tmp); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// makeCgroups gives a container a cgroup of its own below the test's, in the
// systemd (name=systemd or the unified) hierarchies. With --keep-unit and
// --register=no, nspawn puts the container's payload under the cgroup it
// runs in; when that is the root cgroup of a host without systemd, every
// container would share "/payload", and one that a container's systemd left
// behind (its init.scope is not always removed) stops the next boot with
// "Failed to attach … to compat systemd cgroup //payload". Best effort:
// without cgroups of its own the container boots as before.
func makeCgroups(name string) []string {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var mount string
		switch {
		case parts[0] == "0" && parts[1] == "":
			mount = unifiedMount()
		case parts[1] == "name=systemd":
			mount = "/sys/fs/cgroup/systemd"
		default:
			continue
		}
		if mount == "" {
			continue
		}
		dir := filepath.Join(mount, parts[2], name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		dirs = append(dirs, dir)
	}
	return dirs
}

// unifiedMount is where the cgroup2 hierarchy is mounted: /sys/fs/cgroup on
// a unified host, /sys/fs/cgroup/unified on a hybrid one.
func unifiedMount() string {
	for _, dir := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st syscall.Statfs_t
		if syscall.Statfs(dir, &st) == nil && st.Type == 0x63677270 { // CGROUP2_SUPER_MAGIC
			return dir
		}
	}
	return ""
}

// removeCgroups removes the container's cgroups, deepest first; the kernel
// refuses while a process is still in one, so it retries for a moment.
func removeCgroups(dirs []string) {
	deadline := time.Now().Add(5 * time.Second)
	for _, dir := range dirs {
		for {
			var sub []string
			_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					sub = append(sub, p)
				}
				return nil
			})
			failed := false
			for i := len(sub) - 1; i >= 0; i-- {
				if err := syscall.Rmdir(sub[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
					failed = true
				}
			}
			if !failed || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
