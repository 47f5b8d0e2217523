package fix

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// mssNS is a throwaway namespace with eth0 at 1280 and the Host acting in
// it: netlink through the namespace's handle, iptables through NetNS, so
// nothing here ever runs in the host's namespace. It counts the restores
// the host starts.
type mssNS struct {
	*netnstest.NS
	host     Host
	restores atomic.Int64
}

func newMSSNS(t testing.TB) *mssNS {
	t.Helper()
	ns := &mssNS{NS: netnstest.New(t)}
	ns.AddEth0(t, 1280)
	src := detect.Sources{Root: fstest.MapFS{}, Getenv: func(string) string { return "" }}
	ns.host = HostAt(ns.Handle, src, t.TempDir())
	ns.host.NetNS = "/var/run/netns/" + ns.Name
	ns.host.Firewall = func(path string) (firewall.Runner, error) {
		r, err := firewall.Open(path)
		if err != nil {
			return nil, err
		}
		return countRestores{r, &ns.restores}, nil
	}
	return ns
}

type countRestores struct {
	firewall.Runner
	n *atomic.Int64
}

func (c countRestores) Run(name string, args []string, stdin string) (string, error) {
	if strings.HasSuffix(name, "-restore") {
		c.n.Add(1)
	}
	return c.Runner.Run(name, args, stdin)
}

func (ns *mssNS) run(t testing.TB, args ...string) {
	t.Helper()
	ns.Run(t, args[0], args[1:]...)
}

var saveDates = regexp.MustCompile(`(?m)^# (Generated|Completed) .*\n`)
var counters = regexp.MustCompile(` \[\d+:\d+\]`)

// saves is the whole iptables-save and ip6tables-save of a backend (every
// table, not just mangle), with only the dated comment lines and the
// counters left out; backend "" is plain iptables-save.
func (ns *mssNS) saves(t testing.TB, backend firewall.Backend) string {
	t.Helper()
	var all string
	for _, tool := range []string{"iptables", "ip6tables"} {
		name := tool + "-save"
		if backend != "" {
			name = tool + "-" + string(backend) + "-save"
		}
		out := ns.Run(t, name)
		all += "## " + name + "\n" + counters.ReplaceAllString(saveDates.ReplaceAllString(out, ""), "")
	}
	return all
}

func mssConfig() config.Config {
	cfg := config.Default()
	cfg.AssumeWSL, cfg.MSSClamp, cfg.MTUStrategy = true, true, config.StrategyOff
	cfg.OuterInterface, cfg.Tunnels = "eth0", []string{"tailscale0", "wg*"}
	return cfg
}

func needBackend(t *testing.T, backend firewall.Backend) {
	if _, err := exec.LookPath("iptables-" + string(backend) + "-restore"); err != nil {
		t.Skipf("iptables-%s not installed", backend)
	}
}

func TestMSSAgainstRealIPTables(t *testing.T) {
	for _, backend := range []firewall.Backend{firewall.NFT, firewall.Legacy} {
		t.Run(string(backend), func(t *testing.T) {
			needBackend(t, backend)
			ns := newMSSNS(t)
			host, cfg := ns.host, mssConfig()
			ipt, ip6t := "iptables-"+string(backend), "ip6tables-"+string(backend)
			// Someone else's mangle rules, which must survive untouched
			// and make the automatic choice pick this backend.
			ns.run(t, ipt, "-t", "mangle", "-A", "PREROUTING", "-i", "eth0", "-j", "MARK", "--set-mark", "7")
			ns.run(t, ip6t, "-t", "mangle", "-A", "POSTROUTING", "-o", "eth0", "-j", "MARK", "--set-mark", "7")
			before := ns.saves(t, backend)

			dry, err := host.Plan(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("dry run:\n%s", dry.Plan)
			if m := dry.Plan.MSS; m == nil || m.State != MSSAbsent || !strings.HasPrefix(m.Backend, string(backend)+": iptables-"+string(backend)+" already holds rules") {
				t.Fatalf("dry run MSS part: %+v", m)
			}
			if got := ns.saves(t, backend); got != before {
				t.Fatalf("the dry run changed the firewall:\n%s", got)
			}

			var afterFirst string
			for i := 1; i <= 3; i++ {
				restores := ns.restores.Load()
				r, err := host.Fix(cfg)
				if err != nil {
					t.Fatal(err)
				}
				got := ns.saves(t, backend)
				if i == 1 {
					afterFirst = got
					if len(r.MSS.Done) == 0 || ns.restores.Load()-restores != 2 {
						t.Fatalf("the first fix changed %v with %d restores, want changes in one restore per family", r.MSS.Done, ns.restores.Load()-restores)
					}
					continue
				}
				if got != afterFirst || len(r.MSS.Done) != 0 || ns.restores.Load() != restores {
					t.Fatalf("fix #%d changed %v with %d restores:\n%s\nafter the first:\n%s", i, r.MSS.Done, ns.restores.Load()-restores, got, afterFirst)
				}
			}
			t.Logf("after fix:\n%s", afterFirst)
			for _, want := range []string{
				"-A WSLMTU-IN -i tailscale0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1161:65535 -j TCPMSS --set-mss 1160",
				"-A WSLMTU-OUT -o wg+ -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1141:65535 -j TCPMSS --set-mss 1140",
				"-A PREROUTING -p tcp -j WSLMTU-IN\n-A PREROUTING -i eth0 -j MARK --set-xmark 0x7/0xffffffff",
				"-A POSTROUTING -p tcp -j WSLMTU-OUT\n-A POSTROUTING -o eth0 -j MARK --set-xmark 0x7/0xffffffff",
			} {
				if !strings.Contains(afterFirst, want) {
					t.Fatalf("after fix the firewall lacks %q", want)
				}
			}

			// Damage by hand: a rule deleted, a rule edited, a jump
			// deleted, a jump duplicated.
			ns.run(t, ipt, "-t", "mangle", "-D", firewall.ChainIn, "1")
			ns.run(t, ip6t, "-t", "mangle", "-R", firewall.ChainOut, "1", "-o", "tailscale0", "-p", "tcp",
				"--tcp-flags", "SYN,RST", "SYN", "-j", "TCPMSS", "--set-mss", "1400")
			ns.run(t, ip6t, "-t", "mangle", "-D", "POSTROUTING", "-p", "tcp", "-j", firewall.ChainOut)
			ns.run(t, ipt, "-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "-j", firewall.ChainIn)
			if ok, err := mssInSync(host, cfg); ok || err != nil {
				t.Fatalf("MSSInSync after damage = %v, %v", ok, err)
			}
			if _, err := host.Fix(cfg); err != nil {
				t.Fatal(err)
			}
			if got := ns.saves(t, backend); got != afterFirst {
				t.Fatalf("fix did not repair:\n%s\nwant\n%s", got, afterFirst)
			}
			if ok, err := mssInSync(host, cfg); !ok || err != nil {
				t.Fatalf("MSSInSync after repair = %v, %v", ok, err)
			}

			reverted, _, err := host.Revert()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("revert: %v", reverted)
			if got := ns.saves(t, backend); got != before {
				t.Fatalf("revert left\n%s\nwant\n%s", got, before)
			}
			if rec, err := host.Store.loadFirewallRecord(); rec != nil || err != nil {
				t.Errorf("record after revert: %+v, %v", rec, err)
			}
		})
	}
}

// Revert puts back exactly what was there, whole saves
// compared (not just the mangle table), counters aside. With nf_tables that
// includes deleting the mangle table our chains brought along; a legacy
// table cannot be deleted, so from a namespace that had none, legacy keeps
// an empty *mangle (and revert says so).
func TestRevertLeavesTheSavesAsTheyWere(t *testing.T) {
	for _, backend := range []firewall.Backend{firewall.NFT, firewall.Legacy} {
		for _, had := range []string{"no tables", "a mangle table", "other tables"} {
			t.Run(string(backend)+" "+had, func(t *testing.T) {
				needBackend(t, backend)
				ns := newMSSNS(t)
				ns.host.Backend = backend
				switch had {
				case "a mangle table":
					for _, tool := range []string{"iptables", "ip6tables"} {
						ns.run(t, tool+"-"+string(backend), "-t", "mangle", "-A", "OUTPUT", "-o", "eth0", "-j", "MARK", "--set-mark", "3")
					}
				case "other tables":
					ns.run(t, "iptables-"+string(backend), "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE")
					ns.run(t, "ip6tables-"+string(backend), "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
				}
				before, beforePlain := ns.saves(t, backend), ns.saves(t, "")
				if _, err := ns.host.Fix(mssConfig()); err != nil {
					t.Fatal(err)
				}
				if got := ns.saves(t, backend); !strings.Contains(got, "WSLMTU-IN") {
					t.Fatalf("fix made no chains:\n%s", got)
				}
				reverted, _, err := ns.host.Revert()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("revert: %v", reverted)
				want := before
				if backend == firewall.Legacy && had != "a mangle table" {
					want = withEmptyMangle(before)
					if !strings.Contains(fmt.Sprint(reverted), "legacy tables cannot be deleted") {
						t.Errorf("revert does not say the legacy table stays: %v", reverted)
					}
				}
				if got := ns.saves(t, backend); got != want {
					t.Errorf("after revert\n%s\nwant\n%s", got, want)
				}
				if backend == firewall.NFT {
					if got := ns.saves(t, ""); got != beforePlain {
						t.Errorf("plain iptables-save after revert\n%s\nwant\n%s", got, beforePlain)
					}
				}
			})
		}
	}
}

// withEmptyMangle is a legacy save with the empty mangle table the kernel
// keeps once it has been used, added to each family. iptables-legacy-save
// lists the tables newest first.
func withEmptyMangle(saves string) string {
	const mangle = "*mangle\n:PREROUTING ACCEPT\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\nCOMMIT\n"
	return regexp.MustCompile(`(?m)^(## .*\n)`).ReplaceAllString(saves, "${1}"+mangle)
}

// Chains of ours without any record (a crash, a lost
// state directory) are removed when clamping is off; nobody else's rules go.
func TestLeftoverChainsGoWhenClampingIsOff(t *testing.T) {
	needBackend(t, firewall.NFT)
	ns := newMSSNS(t)
	ns.run(t, "iptables-nft", "-t", "mangle", "-A", "PREROUTING", "-i", "eth0", "-j", "MARK", "--set-mark", "7")
	before := ns.saves(t, firewall.NFT)
	for _, tool := range []string{"iptables-nft", "ip6tables-nft"} {
		ns.run(t, tool, "-t", "mangle", "-N", firewall.ChainIn)
		ns.run(t, tool, "-t", "mangle", "-A", firewall.ChainIn, "-i", "tailscale0", "-p", "tcp", "--tcp-flags", "SYN,RST", "SYN", "-j", "TCPMSS", "--set-mss", "1000")
		ns.run(t, tool, "-t", "mangle", "-I", "PREROUTING", "1", "-p", "tcp", "-j", firewall.ChainIn)
	}
	cfg := mssConfig()
	cfg.MSSClamp = false
	r, err := ns.host.Plan(cfg)
	if err != nil || r.Plan.MSS == nil || r.Plan.MSS.State != MSSPresent {
		t.Fatalf("leftovers not seen: %+v, %v", r.Plan.MSS, err)
	}
	if _, err := ns.host.Fix(cfg); err != nil {
		t.Fatal(err)
	}
	after := ns.saves(t, firewall.NFT)
	// The IPv6 table was made by hand with our chains, and there was no
	// record to say so: it stays, empty.
	if strings.Contains(after, "WSLMTU") || !strings.Contains(after, "-A PREROUTING -i eth0 -j MARK --set-xmark 0x7/0xffffffff") {
		t.Errorf("after fix without clamping:\n%s\nbefore our chains:\n%s", after, before)
	}
}
