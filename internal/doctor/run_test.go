package doctor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
	"github.com/wslmtu/wslmtu/internal/testenv/wsldistro"
)

// fakeLinks is the kernel's view: links and the default route's interface.
type fakeLinks struct {
	links        []detect.Link
	defaultIndex int
}

func (f fakeLinks) Links() ([]detect.Link, error) { return append([]detect.Link(nil), f.links...), nil }
func (f fakeLinks) Routes() ([]detect.Route, error) {
	return []detect.Route{{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: f.defaultIndex}}, nil
}

// Rules are tailscaled's: its tailscale0 marks its packets.
func (f fakeLinks) Rules() ([]detect.Rule, error) { return fakekernel.TailscaledRules(4), nil }

// fakeRunner answers netsh.exe from a table and records the command lines.
type fakeRunner struct {
	mu      sync.Mutex
	answers map[string][]byte
	calls   []string
	block   bool // wait for the context instead of answering, like a hung interop
}

func (f *fakeRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmdline := strings.Join(append([]string{name}, args...), " ")
	f.mu.Lock()
	f.calls = append(f.calls, cmdline)
	out, ok := f.answers[cmdline]
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if !ok {
		return nil, errors.New("fake: no answer for " + cmdline)
	}
	return out, nil
}

// wslRoot is a WSL2 distro's files as detect and the timestamps check read them.
func wslRoot(timestamps string) fstest.MapFS {
	root := wsldistro.Root()
	root["proc/sys/net/ipv4/tcp_timestamps"] = &fstest.MapFile{Data: []byte(timestamps + "\n")}
	return root
}

func host(t *testing.T, root fstest.MapFS, ethMTU, tunMTU int) fix.Host {
	links := fakeLinks{links: []detect.Link{
		{Name: "lo", Index: 1, MTU: 65536, Up: true},
		{Name: "eth0", Index: 2, MTU: ethMTU, Kind: "device", Up: true, IPv6Addrs: 0},
		{Name: "tailscale0", Index: 3, MTU: tunMTU, Kind: "tun", Up: true, IPv6Addrs: 1},
	}, defaultIndex: 2}
	return fix.Host{Sources: detect.Sources{Root: root, Getenv: func(string) string { return "" }},
		Links: links, Store: fix.Store{Dir: t.TempDir()}}
}

func netshAnswers(t *testing.T) map[string][]byte {
	return map[string][]byte{
		"netsh.exe interface ipv4 show subinterfaces": fixture(t, "netsh_ipv4_tailscale.txt"),
		"netsh.exe interface ipv6 show subinterfaces": fixture(t, "netsh_ipv6_tailscale.txt"),
	}
}

func found(string) (string, error)    { return "/mnt/c/Windows/system32/netsh.exe", nil }
func notFound(string) (string, error) { return "", errors.New("executable file not found in $PATH") }

func statuses(checks []Check) string {
	var parts []string
	for _, c := range checks {
		parts = append(parts, string(c.Status)+" "+c.Name)
	}
	return strings.Join(parts, "\n")
}

func TestRunBrokenWSL(t *testing.T) {
	root := wslRoot("1")
	runner := &fakeRunner{answers: netshAnswers(t)}
	var agentDir string
	checks := Run(context.Background(), Inputs{
		Host: host(t, root, 1280, 1280), Config: config.Default(), StateDir: "/state",
		Root: root, Windows: runner, LookPath: found,
		Agent: func(dir string) (agentstatus.Status, error) { agentDir = dir; return agentstatus.Status{}, nil },
	})
	want := strings.Join([]string{
		"ok environment", "fail agent", "ok revert record", "fail plan", "fail mtu tailscale0", "warn outer scope", "skip mss clamp",
		"ok ipv6 tailscale0", "ok tcp timestamps", "ok windows adapters"}, "\n")
	if got := statuses(checks); got != want {
		t.Errorf("checks:\n%s\nwant:\n%s\n\n%v", got, want, checks)
	}
	if agentDir != "/state" {
		t.Errorf("agent status read from %q, want /state", agentDir)
	}
	if Healthy(checks) || Failed(checks) != 3 {
		t.Errorf("Healthy %v, Failed %d; want false, 3", Healthy(checks), Failed(checks))
	}
	c, _ := Find(checks, "mtu tailscale0")
	assertCheck(t, c, wantDetail(Fail, "eth0 1280 < 1360 (tailscale0 1280 + 80 WireGuard/IPv6 overhead): packets over 1216 bytes are lost"))
	c, _ = Find(checks, NameWindows)
	assertCheck(t, c, wantDetail(OK, "Tailscale pulls eth0 down to 1280"))
	c, _ = Find(checks, NameEnvironment)
	assertCheck(t, c, wantDetail(OK, "WSL2, networking mode nat"))
	wantCalls := "netsh.exe interface ipv4 show subinterfaces\nnetsh.exe interface ipv6 show subinterfaces"
	if got := strings.Join(runner.calls, "\n"); got != wantCalls {
		t.Errorf("netsh calls:\n%s\nwant:\n%s", got, wantCalls)
	}
}

func wantDetail(s Status, detail string) want { return want{status: s, detail: []string{detail}} }

func TestRunHealthyWSLWithAgent(t *testing.T) {
	root := wslRoot("0")
	checks := Run(context.Background(), Inputs{
		// eth0 1500: no VPN on Windows (1360 would be tailscaled's own fix,
		// which needs the tunnel scope's rules this fake cannot hold).
		Host: host(t, root, 1500, 1280), Config: config.Default(),
		Root: root, Windows: &fakeRunner{answers: netshAnswers(t)}, LookPath: found,
		Agent: func(string) (agentstatus.Status, error) {
			return agentstatus.Status{Known: true, Running: true, Counters: agentstatus.Counters{PID: 7, Started: time.Now(), Repairs: 2}}, nil
		},
	})
	if !Healthy(checks) {
		t.Errorf("want healthy:\n%s", statuses(checks))
	}
	for _, c := range checks {
		if c.Status == Warn || c.Status == Fail {
			t.Errorf("unexpected %s", c)
		}
	}
}

func TestRunNoInteropNotWSLAndBadConfig(t *testing.T) {
	agentNever := func(string) (agentstatus.Status, error) { return agentstatus.Status{}, nil }

	t.Run("netsh.exe missing", func(t *testing.T) {
		root := wslRoot("1")
		runner := &fakeRunner{}
		checks := Run(context.Background(), Inputs{Host: host(t, root, 1360, 1280), Config: config.Default(),
			Root: root, Windows: runner, LookPath: notFound, Agent: agentNever})
		c, _ := Find(checks, NameWindows)
		assertCheck(t, c, want{status: Skip, detail: []string{"netsh.exe not found"}, remedy: "-"})
		if len(runner.calls) != 0 {
			t.Errorf("ran %v without netsh.exe", runner.calls)
		}
	})

	t.Run("not wsl", func(t *testing.T) {
		root := fstest.MapFS{"proc/sys/kernel/osrelease": {Data: []byte("6.18.0-1-amd64\n")}}
		runner := &fakeRunner{answers: netshAnswers(t)}
		checks := Run(context.Background(), Inputs{Host: host(t, root, 1280, 1280), Config: config.Default(),
			Root: root, Windows: runner, LookPath: found, Agent: agentNever})
		want := strings.Join([]string{
			"fail environment", "fail agent", "ok revert record", "skip plan", "fail mtu tailscale0", "warn outer scope", "skip mss clamp",
			"ok ipv6 tailscale0", "skip tcp timestamps", "skip windows adapters"}, "\n")
		if got := statuses(checks); got != want {
			t.Errorf("checks:\n%s\nwant:\n%s", got, want)
		}
		if len(runner.calls) != 0 {
			t.Errorf("asked Windows on a host that is not WSL: %v", runner.calls)
		}
	})

	t.Run("assumed wsl", func(t *testing.T) {
		root := fstest.MapFS{"proc/sys/kernel/osrelease": {Data: []byte("6.18.0-1-amd64\n")}}
		cfg := config.Default()
		cfg.AssumeWSL = true
		checks := Run(context.Background(), Inputs{Host: host(t, root, 1280, 1280), Config: cfg,
			Root: root, Windows: &fakeRunner{}, LookPath: notFound, Agent: agentNever})
		c, _ := Find(checks, NameEnvironment)
		assertCheck(t, c, wantDetail(OK, "assumed WSL2"))
		c, _ = Find(checks, NamePlan)
		assertCheck(t, c, wantDetail(Fail, "eth0: mtu 1280 → 1360"))
	})

	t.Run("outer interface missing", func(t *testing.T) {
		root := wslRoot("1")
		cfg := config.Default()
		cfg.OuterInterface = "eth9"
		checks := Run(context.Background(), Inputs{Host: host(t, root, 1280, 1280), Config: cfg,
			Root: root, Windows: &fakeRunner{}, LookPath: notFound, Agent: agentNever})
		wantOrder := strings.Join([]string{"fail observe", "fail agent", "ok tcp timestamps", "skip windows adapters"}, "\n")
		if got := statuses(checks); got != wantOrder {
			t.Errorf("checks:\n%s\nwant:\n%s", got, wantOrder)
		}
		c, _ := Find(checks, NameObserve)
		assertCheck(t, c, want{status: Fail, detail: []string{`outer interface "eth9" not found`}, remedy: "--outer-interface"})
	})

	t.Run("mss clamp without iptables", func(t *testing.T) {
		root := wslRoot("1")
		cfg := config.Default()
		cfg.MSSClamp = true
		checks := Run(context.Background(), Inputs{Host: host(t, root, 1360, 1280), Config: cfg,
			Root: root, LookPath: notFound, Agent: agentNever})
		c, _ := Find(checks, NameMSS)
		assertCheck(t, c, want{status: Fail, detail: []string{"cannot clamp: no iptables support on this system"}, remedy: "apt install iptables"})
	})
}

func TestRunInteropHangs(t *testing.T) {
	root := wslRoot("1")
	runner := &fakeRunner{block: true}
	checks := Run(context.Background(), Inputs{Host: host(t, root, 1360, 1280), Config: config.Default(),
		Root: root, Windows: runner, LookPath: found, InteropTimeout: 10 * time.Millisecond,
		Agent: func(string) (agentstatus.Status, error) { return agentstatus.Status{}, nil }})
	c, _ := Find(checks, NameWindows)
	assertCheck(t, c, want{status: Warn, detail: []string{"context deadline exceeded"}, remedy: "WSL interop"})
}

// TestRunReadsTheAgentsCounters uses the real agentstatus.Read on a state
// directory whose counters name a pid that is not an agent.
func TestRunReadsTheAgentsCounters(t *testing.T) {
	dir := t.TempDir()
	counters := `{"pid": 999999999, "started": "2025-03-01T10:00:00Z", "repairs": 5,
		"last_repair": {"time": "2025-03-01T11:00:00Z", "interface": "eth0", "from": 1280, "to": 1360,
		"cause": "RTM_NEWLINK eth0", "latency_ns": 350000}}`
	if err := os.WriteFile(filepath.Join(dir, "agent.json"), []byte(counters), 0o644); err != nil {
		t.Fatal(err)
	}
	root := wslRoot("1")
	cfg := config.Default()
	cfg.StateDir = dir
	checks := Run(context.Background(), Inputs{Host: host(t, root, 1360, 1280), Config: cfg, Root: root, LookPath: notFound})
	c, _ := Find(checks, NameAgent)
	assertCheck(t, c, want{status: Fail, detail: []string{"pid 999999999 is gone", "5 repairs", "last repair: eth0: mtu 1280 → 1360 after RTM_NEWLINK eth0"},
		remedy: "sudo ./install.sh (or `sudo systemctl start wslmtu`)"})
}

// With a damaged revert record doctor recommended
// `wslmtu fix`, which then failed on it. It names the record and the way out.
func TestRunDamagedRecord(t *testing.T) {
	root := wslRoot("1")
	h := host(t, root, 1360, 1280)
	path := h.Store.RecordPath()
	if err := os.WriteFile(path, []byte(`{"version":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	checks := Run(context.Background(), Inputs{Host: h, Config: config.Default(), Root: root,
		Agent: func(string) (agentstatus.Status, error) { return agentstatus.Status{}, nil }})
	c, ok := Find(checks, NameRecord)
	if !ok || c.Status != Fail || !strings.Contains(c.Detail, path+" is damaged") || !strings.Contains(c.Remedy, "sudo mv "+path) {
		t.Errorf("record check: %+v", c)
	}
	if c, _ := Find(checks, NamePlan); strings.Contains(c.Remedy, "wslmtu fix") && c.Status == Fail && !strings.Contains(c.Detail, "damaged") {
		t.Errorf("plan check recommends fix without naming the damaged record: %+v", c)
	}
	if c, ok := Find(checks, NameObserve); ok {
		t.Errorf("a damaged record is not a failure to observe: %+v", c)
	}
}
