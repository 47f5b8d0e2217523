package fix

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/netnstest"
)

// testNetns creates a throwaway namespace with eth0 at 1280 and returns a
// function that runs fn on an OS thread inside it. Every iptables process
// the code under test starts is a child of that thread, so it sees only the
// namespace's firewall, never the host's.
func testNetns(t *testing.T) func(fn func() error) error {
	t.Helper()
	netnstest.RequireRoot(t, "creates a network namespace and runs iptables in it")
	b := make([]byte, 4)
	rand.Read(b)
	name := "wslmtu-mss-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "add", "eth0", "mtu", "1280", "type", "veth", "peer", "name", "hv0").CombinedOutput(); err != nil {
		t.Fatalf("creating eth0: %v: %s", err, out)
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return func(fn func() error) error {
		errc := make(chan error, 1)
		go func() {
			returned := false
			defer func() {
				if !returned {
					errc <- errors.New("the test stopped inside the namespace")
				}
			}()
			// Never unlocked: the runtime retires this thread with the
			// goroutine instead of reusing a thread in the wrong namespace.
			runtime.LockOSThread()
			if err := netns.Set(ns); err != nil {
				errc <- err
				return
			}
			err := fn()
			returned = true
			errc <- err
		}()
		return <-errc
	}
}

var saveNoise = regexp.MustCompile(`(?m)^#.*\n`)
var counters = regexp.MustCompile(` \[\d+:\d+\]`)

// mangleSave is `iptables-save -t mangle` for both families without the
// comment lines (dates, warnings) and counters.
func mangleSave(backend Backend) string {
	var all string
	for _, tool := range []string{"iptables", "ip6tables"} {
		out, err := exec.Command(tool+"-"+string(backend)+"-save", "-t", "mangle").Output()
		if err != nil {
			return fmt.Sprintf("%s-%s-save failed: %v", tool, backend, err)
		}
		all += counters.ReplaceAllString(saveNoise.ReplaceAllString(string(out), ""), "")
	}
	return all
}

func run(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func TestMSSAgainstRealIPTables(t *testing.T) {
	for _, backend := range []Backend{BackendNFT, BackendLegacy} {
		t.Run(string(backend), func(t *testing.T) {
			if _, err := exec.LookPath("iptables-" + string(backend)); err != nil {
				t.Skipf("iptables-%s not installed", backend)
			}
			do := testNetns(t)
			dir := t.TempDir()
			cfg := config.Default()
			cfg.AssumeWSL, cfg.MSSClamp, cfg.MTUStrategy = true, true, config.StrategyOff
			cfg.OuterInterface, cfg.Tunnels = "eth0", []string{"tailscale0", "wg*"}
			err := do(func() error {
				// Someone else's mangle rules, which must survive untouched
				// and make the automatic choice pick this backend.
				if err := run("iptables-"+string(backend), "-t", "mangle", "-A", "PREROUTING", "-i", "eth0", "-j", "MARK", "--set-mark", "7"); err != nil {
					return err
				}
				if err := run("ip6tables-"+string(backend), "-t", "mangle", "-A", "POSTROUTING", "-o", "eth0", "-j", "MARK", "--set-mark", "7"); err != nil {
					return err
				}
				before := mangleSave(backend)

				h, err := netlink.NewHandle()
				if err != nil {
					return err
				}
				defer h.Close()
				src := detect.Sources{Root: fstest.MapFS{}, Getenv: func(string) string { return "" }}
				host := HostAt(h, src, dir)

				dry, err := host.Plan(cfg)
				if err != nil {
					return err
				}
				t.Logf("dry run:\n%s", dry.Plan)
				if m := dry.Plan.MSS; m == nil || m.State != MSSAbsent || !strings.HasPrefix(m.Backend, string(backend)+": iptables-"+string(backend)+" already holds rules") {
					return fmt.Errorf("dry run MSS part: %+v", m)
				}
				if got := mangleSave(backend); got != before {
					return fmt.Errorf("the dry run changed the firewall:\n%s", got)
				}

				var afterFirst string
				for i := 1; i <= 3; i++ {
					r, err := host.Fix(cfg)
					if err != nil {
						return err
					}
					got := mangleSave(backend)
					if i == 1 {
						afterFirst = got
						if len(r.MSS.Done) == 0 {
							return fmt.Errorf("the first fix changed nothing")
						}
						continue
					}
					if got != afterFirst || len(r.MSS.Done) != 0 {
						return fmt.Errorf("fix #%d changed %v:\n%s\nafter the first:\n%s", i, r.MSS.Done, got, afterFirst)
					}
				}
				t.Logf("after fix:\n%s", afterFirst)
				for _, want := range []string{
					"-A WSLMTU-IN -i tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1161:65535 -j TCPMSS --set-mss 1160",
					"-A WSLMTU-OUT -o wg+ -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1141:65535 -j TCPMSS --set-mss 1140",
					"-A PREROUTING -p tcp -j WSLMTU-IN\n-A PREROUTING -i eth0 -j MARK --set-xmark 0x7/0xffffffff",
				} {
					if !strings.Contains(afterFirst, want) {
						return fmt.Errorf("after fix the firewall lacks %q", want)
					}
				}

				// Damage by hand: a rule deleted, a rule edited, a jump deleted.
				if err := run("iptables-"+string(backend), "-t", "mangle", "-D", ChainIn, "1"); err != nil {
					return err
				}
				if err := run("ip6tables-"+string(backend), "-t", "mangle", "-R", ChainOut, "1", "-o", "tailscale0", "-p", "tcp",
					"--tcp-flags", "SYN,RST", "SYN", "-j", "TCPMSS", "--set-mss", "1400"); err != nil {
					return err
				}
				if err := run("ip6tables-"+string(backend), "-t", "mangle", "-D", "POSTROUTING", "-p", "tcp", "-j", ChainOut); err != nil {
					return err
				}
				if ok, err := host.MSSInSync(cfg); ok || err != nil {
					return fmt.Errorf("MSSInSync after damage = %v, %v", ok, err)
				}
				if _, err := host.Fix(cfg); err != nil {
					return err
				}
				if got := mangleSave(backend); got != afterFirst {
					return fmt.Errorf("fix did not repair:\n%s\nwant\n%s", got, afterFirst)
				}
				if ok, err := host.MSSInSync(cfg); !ok || err != nil {
					return fmt.Errorf("MSSInSync after repair = %v, %v", ok, err)
				}

				reverted, _, err := host.Revert()
				if err != nil {
					return err
				}
				t.Logf("revert: %v", reverted)
				if got := mangleSave(backend); got != before {
					return fmt.Errorf("revert left\n%s\nwant\n%s", got, before)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if rec, _, _ := (Store{Dir: dir}).LoadRecord(); rec.MSS != nil {
				t.Errorf("record after revert: %+v", rec.MSS)
			}
		})
	}
}

func TestOpenNetfilterDefaultsToPlainIPTables(t *testing.T) {
	do := testNetns(t)
	err := do(func() error {
		nf, err := OpenNetfilter(BackendAuto)
		if err != nil {
			return err
		}
		want, err := backendOf("/usr/sbin/iptables")
		if err != nil {
			return err
		}
		if nf.Backend != want || !strings.Contains(nf.Why, "default iptables") || len(nf.Available()) != 2 {
			t.Errorf("empty namespace: backend %q (%s), families %v; want %q, the default", nf.Backend, nf.Why, nf.Available(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
