package firewall_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netns"

	fw "github.com/wslmtu/wslmtu/internal/firewall"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// nsRunner is a throwaway namespace and the Runner of it, by path.
func nsRunner(t *testing.T) (*netnstest.NS, fw.Runner) {
	t.Helper()
	ns := netnstest.New(t)
	r, err := fw.Open("/var/run/netns/" + ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return ns, r
}

func needTools(t *testing.T, b fw.Backend) {
	if _, err := exec.LookPath("iptables-" + string(b) + "-restore"); err != nil {
		t.Skipf("iptables-%s not installed", b)
	}
}

func TestExecRunsInTheGivenNamespace(t *testing.T) {
	ns, r := nsRunner(t)
	ns.Run(t, "ip", "link", "add", "probe0", "type", "veth", "peer", "name", "probe1")
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	out, err := r.Run("ip", []string{"-o", "link", "show", "probe0"}, "")
	if err != nil || !strings.Contains(out, "probe0") {
		t.Errorf("ip link inside the namespace: %q, %v", out, err)
	}
	dev, err := r.NetFile("dev")
	if err != nil || !strings.Contains(dev, "probe1") {
		t.Errorf("/proc/thread-self/net/dev inside the namespace: %q, %v", dev, err)
	}
	if missing, err := r.NetFile("no_such_file"); missing != "" || err != nil {
		t.Errorf("a missing proc file: %q, %v", missing, err)
	}
	// The stdin reaches the child, stderr the error.
	if out, err := r.Run("cat", nil, "hello\n"); out != "hello\n" || err != nil {
		t.Errorf("cat: %q, %v", out, err)
	}
	if _, err := r.Run("sh", []string{"-c", "echo oops >&2; exit 3"}, ""); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("a failing program: %v", err)
	}
	if _, err := r.Run("no-such-program-wslmtu", nil, ""); !fw.IsNotFound(err) {
		t.Errorf("a missing program: %v", err)
	}
	after, err := netns.Get()
	if err != nil || !after.Equal(before) {
		t.Errorf("the calling thread's namespace changed")
	}
	after.Close()
	// A multi-call binary runs as the applet it is called by.
	if path, err := r.Resolve("iptables-nft-save"); err == nil && filepath.Base(path) != "xtables-nft-multi" {
		t.Logf("iptables-nft-save resolves to %s", path)
	}
}

// Tests must never run iptables in the host's namespace: Open refuses it.
func TestOpenRefusesTheHostNamespaceInTests(t *testing.T) {
	netnstest.RequireRoot(t, "opens namespaces")
	for _, path := range []string{"", "/proc/self/ns/net"} {
		if r, err := fw.Open(path); err == nil || !strings.Contains(err.Error(), "only in a throwaway namespace") {
			if r != nil {
				r.Close()
			}
			t.Errorf("Open(%q) = %v, want a refusal", path, err)
		}
	}
}

// The measurement behind Diff's restore scripts, kept as a test so a new
// iptables that behaves otherwise is noticed: with --noflush a declared user
// chain is flushed (and a missing one created), and a failing line leaves
// the whole block unapplied.
func TestRestoreNoflushFlushesADeclaredChain(t *testing.T) {
	for _, b := range []fw.Backend{fw.NFT, fw.Legacy} {
		t.Run(string(b), func(t *testing.T) {
			needTools(t, b)
			ns, r := nsRunner(t)
			ipt := "iptables-" + string(b)
			ns.Run(t, ipt, "-t", "mangle", "-N", fw.ChainIn)
			ns.Run(t, ipt, "-t", "mangle", "-A", fw.ChainIn, "-i", "old0", "-j", "ACCEPT")
			ns.Run(t, ipt, "-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "-j", fw.ChainIn)
			script := "*mangle\n:WSLMTU-IN - [0:0]\n-A WSLMTU-IN -i new0 -j ACCEPT\n:WSLMTU-OUT - [0:0]\nCOMMIT\n"
			if _, err := r.Run(ipt+"-restore", []string{"--noflush", "--wait=10"}, script); err != nil {
				t.Fatal(err)
			}
			set := save(t, r, ipt+"-save")
			m := set.Table(fw.Mangle)
			if got := m.Chain(fw.ChainIn).Rules; len(got) != 1 || got[0] != "-i new0 -j ACCEPT" {
				t.Errorf("WSLMTU-IN after declaring it = %q, want only the new rule", got)
			}
			if m.Chain(fw.ChainOut) == nil || len(m.Chain("PREROUTING").Rules) != 1 {
				t.Errorf("a declared chain was not created, or the jump went:\n%s", set)
			}
			bad := "*mangle\n:WSLMTU-IN - [0:0]\n-A WSLMTU-IN -i newer0 -j ACCEPT\n-A PREROUTING -j NO-SUCH-CHAIN\nCOMMIT\n"
			if _, err := r.Run(ipt+"-restore", []string{"--noflush"}, bad); err == nil {
				t.Fatal("a bad line was accepted")
			}
			if again := save(t, r, ipt+"-save"); again.String() != set.String() {
				t.Errorf("a failed restore changed the table:\n%s", again)
			}
		})
	}
}

func save(t *testing.T, r fw.Runner, tool string) *fw.Ruleset {
	t.Helper()
	out, err := r.Run(tool, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	set, err := fw.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// counting counts the restores started (the families run side by side).
type counting struct {
	fw.Runner
	n atomic.Int64
}

func (c *counting) restores() int { return int(c.n.Load()) }

func (c *counting) Run(name string, args []string, stdin string) (string, error) {
	if strings.HasSuffix(name, "-restore") {
		c.n.Add(1)
	}
	return c.Runner.Run(name, args, stdin)
}

// sync is one read, diff and apply, as fix does it.
func sync(t *testing.T, r fw.Runner, b fw.Backend, want *fw.Rules) []string {
	t.Helper()
	st, err := fw.Read(r, b)
	if err != nil {
		t.Fatal(err)
	}
	var patches []fw.Patch
	for _, f := range st.Families() {
		patches = append(patches, fw.Diff(f, want, st.Mangle(f)))
	}
	done, err := fw.Apply(r, st, patches)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

func TestSyncInANamespace(t *testing.T) {
	want := &fw.Rules{In: []string{ruleIn}, Out: []string{ruleOut}}
	for _, b := range []fw.Backend{fw.NFT, fw.Legacy} {
		t.Run(string(b), func(t *testing.T) {
			needTools(t, b)
			ns, inner := nsRunner(t)
			r := &counting{Runner: inner}
			ipt := "iptables-" + string(b)
			ns.Run(t, ipt, "-t", "mangle", "-A", "PREROUTING", "-i", "eth0", "-j", "MARK", "--set-mark", "7")
			ns.Run(t, "ip6tables-"+string(b), "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
			before := save(t, r, ipt+"-save").String() + save(t, r, "ip6tables-"+string(b)+"-save").String()

			if done := sync(t, r, b, want); len(done) != 8 || r.restores() != 2 {
				t.Fatalf("create: %q with %d restores", done, r.restores())
			}
			created := save(t, r, ipt+"-save")
			if got := created.Table(fw.Mangle).Chain("PREROUTING").Rules; len(got) != 2 || got[0] != "-p tcp -j WSLMTU-IN" || "-A PREROUTING "+got[1] != others {
				t.Errorf("PREROUTING = %q", got)
			}
			if done := sync(t, r, b, want); len(done) != 0 || r.restores() != 2 {
				t.Fatalf("second sync: %q, %d restores in all, want none more", done, r.restores())
			}

			ns.Run(t, ipt, "-t", "mangle", "-F", fw.ChainIn)
			ns.Run(t, ipt, "-t", "mangle", "-R", fw.ChainOut, "1", "-o", "tailscale0", "-j", "ACCEPT")
			ns.Run(t, ipt, "-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "-j", fw.ChainIn)
			if done := sync(t, r, b, want); len(done) != 3 || r.restores() != 3 {
				t.Errorf("repair: %q, %d restores in all", done, r.restores())
			}
			if got := save(t, r, ipt+"-save"); got.String() != created.String() {
				t.Errorf("after repair\n%s\nwant\n%s", got, created)
			}

			sync(t, r, b, nil)
			if _, err := fw.RemoveCreatedTable(r, b, fw.IPv6); err != nil {
				t.Fatal(err)
			}
			after := save(t, r, ipt+"-save").String() + save(t, r, "ip6tables-"+string(b)+"-save").String()
			if b == fw.Legacy {
				// The legacy ip6 mangle table cannot go (see RemoveCreatedTable).
				after = strings.Replace(after, "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n*filter", "*filter", 1)
			}
			if after != before {
				t.Errorf("after removal\n%s\nwant\n%s", after, before)
			}
		})
	}
}

// The automatic choice on a namespace without rules is what plain iptables
// is, found without running it.
func TestReadDefaultsToPlainIPTables(t *testing.T) {
	_, r := nsRunner(t)
	st, err := fw.Read(r, fw.Auto)
	if err != nil {
		t.Fatal(err)
	}
	path, err := filepath.EvalSymlinks("/usr/sbin/iptables")
	if err != nil {
		t.Skip(err)
	}
	want := fw.Legacy
	if strings.Contains(path, "nft") {
		want = fw.NFT
	}
	if st.Backend != want || !strings.Contains(st.Why, "default iptables") || len(st.Families()) != 2 {
		t.Errorf("empty namespace: backend %q (%s), families %v; want %q, the default", st.Backend, st.Why, st.Families(), want)
	}
}

// nf_tables counts every committed change of a namespace, by anyone; Read
// through nft returns the state read before, without a process, while the
// count is unchanged.
func TestStampCountsEveryChange(t *testing.T) {
	needTools(t, fw.NFT)
	ns, inner := nsRunner(t)
	_, other := nsRunner(t)
	r := &countingRuns{Runner: inner}
	s1, err := r.Stamp()
	if err != nil {
		t.Fatal(err)
	}
	if s2, _ := r.Stamp(); s2 != s1 || s1.Cookie == 0 || s1.IPv4Tables != 0 || s1.IPv6Tables != 0 {
		t.Errorf("a fresh namespace: %+v, then %+v; want no tables, a cookie, no move", s1, s2)
	}
	if o, _ := other.Stamp(); o.Cookie == s1.Cookie {
		t.Errorf("two namespaces share the cookie %d", o.Cookie)
	}
	st, err := fw.Read(r, fw.NFT)
	if err != nil {
		t.Fatal(err)
	}
	runs := r.n.Load()
	again, err := fw.Read(r, fw.NFT)
	if err != nil || r.n.Load() != runs || again.Sets[fw.IPv4].String() != st.Sets[fw.IPv4].String() {
		t.Errorf("an unchanged firewall was read again (%d programs started), or differently: %v", r.n.Load()-runs, err)
	}
	ns.Run(t, "ip6tables-nft", "-t", "mangle", "-A", "OUTPUT", "-j", "ACCEPT")
	s3, _ := r.Stamp()
	if s3.Cookie != s1.Cookie || s3.Gen == s1.Gen || s3.IPv6Tables != 1 || s3.IPv4Tables != 0 {
		t.Errorf("ip6tables-nft -A did not move the generation or count the table: %+v → %+v", s1, s3)
	}
	changed, err := fw.Read(r, fw.NFT)
	if err != nil || r.n.Load() == runs || changed.Mangle(fw.IPv6).Chain("OUTPUT") == nil || len(changed.Mangle(fw.IPv6).Chain("OUTPUT").Rules) != 1 {
		t.Errorf("a changed firewall was not read again: %v", err)
	}
	// Our chains are seen over netlink: leftovers are looked for without
	// a process.
	if fw.MayHoldOurs(r) || s3.IPv4Ours || s3.IPv6Ours {
		t.Errorf("chains of ours seen where there are none: %+v", s3)
	}
	ns.Run(t, "ip6tables-nft", "-t", "mangle", "-N", fw.ChainOut)
	if s5, _ := r.Stamp(); !s5.IPv6Ours || s5.IPv4Ours || !fw.MayHoldOurs(r) {
		t.Errorf("ip6tables-nft -N WSLMTU-OUT not seen: %+v", s5)
	}
	ns.Run(t, "ip6tables-nft", "-t", "mangle", "-X", fw.ChainOut)
	// Legacy has no generation: always read; a legacy mangle table may
	// hold ours.
	ns.Run(t, "iptables-legacy", "-t", "mangle", "-A", "OUTPUT", "-j", "ACCEPT")
	if !fw.MayHoldOurs(r) {
		t.Error("a legacy mangle table is not looked into")
	}
	if s4, _ := r.Stamp(); s4 != s3 {
		t.Logf("iptables-legacy moved the nf_tables generation: %v → %v", s3, s4)
	}
}

// countingRuns counts every program started.
type countingRuns struct {
	fw.Runner
	n atomic.Int64
}

func (c *countingRuns) Run(name string, args []string, stdin string) (string, error) {
	c.n.Add(1)
	return c.Runner.Run(name, args, stdin)
}
