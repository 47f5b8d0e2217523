package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"time"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/windows"
)

// Status is a check's verdict. Only Fail makes the host unhealthy: Warn points
// at something worth knowing that is not an MTU fault, Skip means the check
// does not apply here.
type Status string

const (
	OK   Status = "ok"
	Fail Status = "fail"
	Warn Status = "warn"
	Skip Status = "skip"
)

// Check is one verdict, printed as a line (plus indented detail lines).
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Remedy string `json:"remedy,omitempty"`
}

// Planner observes and plans without changing anything; fix.Host is one.
type Planner interface {
	Plan(cfg config.Config) (fix.Report, error)
}

var _ Planner = fix.Host{}

// DefaultInteropTimeout bounds each netsh.exe call: WSL interop can hang when
// the Windows side is unwell, and doctor must still answer.
const DefaultInteropTimeout = 5 * time.Second

// Inputs are where the checks get their facts.
type Inputs struct {
	Host   Planner
	Config config.Config
	// StateDir holds the agent's counters; empty means Config.StateDir.
	StateDir string
	// Root is the file system holding proc/sys/net/ipv4/tcp_timestamps
	// (os.DirFS("/") in production); nil skips the check.
	Root fs.FS
	// Windows runs netsh.exe through WSL interop; nil skips the check.
	Windows windows.Runner
	// LookPath finds netsh.exe; nil means exec.LookPath.
	LookPath func(string) (string, error)
	// Agent reads the agent's status; nil means agentstatus.Read.
	Agent func(stateDir string) (agentstatus.Status, error)
	// InteropTimeout bounds each netsh.exe call; 0 means DefaultInteropTimeout.
	InteropTimeout time.Duration
	// Verify checks the paths to the config's verify hosts under the
	// report (internal/probe.Verify, the one check `wslmtu verify` and the
	// agent make); nil skips them.
	Verify func(ctx context.Context, hosts []string, r fix.Report) []fix.PathCheck
}

// Run performs every check, in the order they are printed.
func Run(ctx context.Context, in Inputs) []Check {
	stateDir := in.StateDir
	if stateDir == "" {
		stateDir = in.Config.StateDir
	}
	readAgent := in.Agent
	if readAgent == nil {
		readAgent = agentstatus.Read
	}
	lookPath := in.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}

	var checks []Check
	var report fix.Report
	var planErr error
	if in.Host == nil {
		planErr = fmt.Errorf("no host to observe")
	} else {
		report, planErr = in.Host.Plan(in.Config)
		// A damaged revert record is a finding of its own; the rest of the
		// host was observed all the same.
		var damaged *fix.DamagedError
		if errors.As(planErr, &damaged) {
			planErr = nil
		}
	}

	if planErr != nil {
		checks = append(checks, Check{Name: NameObserve, Status: Fail,
			Detail: "could not observe the host: " + planErr.Error(),
			Remedy: "check --outer-interface and --tunnels (or the config), and run as root"})
	} else {
		checks = append(checks, CheckEnvironment(report.State.Env))
	}
	agentStatus, agentErr := readAgent(stateDir)
	checks = append(checks, CheckAgent(stateDir, agentStatus, agentErr))
	if planErr == nil {
		checks = append(checks, CheckRecord(report.RecordFound, report.RecordErr, report.RecordPath))
		plan := CheckPlan(report)
		if report.RecordErr != "" {
			plan.Remedy = "first move the damaged revert record aside (see " + NameRecord + "), then run `wslmtu fix`"
		}
		checks = append(checks, plan)
		checks = append(checks, CheckMTUs(report.State, in.Config, report.Plan)...)
		checks = append(checks, CheckScope(report.State, in.Config, report.Plan))
		checks = append(checks, CheckMSS(in.Config, report.Plan))
		checks = append(checks, CheckIPv6(report.State)...)
		if in.Verify != nil && len(in.Config.Verify) > 0 {
			checks = append(checks, CheckPaths(in.Verify(ctx, in.Config.Verify, report))...)
		}
	}
	checks = append(checks, CheckTCPTimestamps(readSysctl(in.Root, "proc/sys/net/ipv4/tcp_timestamps")))

	wsl := planErr == nil && report.State.Env.WSL
	mode := ""
	if planErr == nil {
		mode = report.State.Env.NetworkingMode
	}
	checks = append(checks, windowsCheck(ctx, in, lookPath, wsl, mode))
	return checks
}

// Healthy is true when no check failed.
func Healthy(checks []Check) bool {
	for _, c := range checks {
		if c.Status == Fail {
			return false
		}
	}
	return true
}

// Failed counts the failed checks.
func Failed(checks []Check) int {
	n := 0
	for _, c := range checks {
		if c.Status == Fail {
			n++
		}
	}
	return n
}

// Find returns the first check with that name, for callers and tests that
// assert one verdict; ok is false when there is none.
func Find(checks []Check, name string) (Check, bool) {
	for _, c := range checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// Sysctl is what reading one /proc/sys file gave.
type Sysctl struct {
	Value string
	Err   error
}

func readSysctl(root fs.FS, name string) Sysctl {
	if root == nil {
		return Sysctl{Err: fs.ErrNotExist}
	}
	data, err := fs.ReadFile(root, name)
	if err != nil {
		return Sysctl{Err: err}
	}
	return Sysctl{Value: strings.TrimSpace(string(data))}
}

func windowsCheck(ctx context.Context, in Inputs, lookPath func(string) (string, error), wsl bool, mode string) Check {
	const netsh = "netsh.exe"
	switch {
	case !wsl:
		return Check{Name: NameWindows, Status: Skip, Detail: "not WSL: no Windows host to ask"}
	case in.Windows == nil:
		return Check{Name: NameWindows, Status: Skip, Detail: "Windows interop not wired in"}
	}
	if _, err := lookPath(netsh); err != nil {
		return Check{Name: NameWindows, Status: Skip,
			Detail: "netsh.exe not found: WSL interop is off or Windows' System32 is not on PATH " +
				"([interop] enabled / appendWindowsPath in /etc/wsl.conf)"}
	}
	timeout := in.InteropTimeout
	if timeout <= 0 {
		timeout = DefaultInteropTimeout
	}
	var outs [2][]byte
	var errs [2]error
	for i, family := range []string{"ipv4", "ipv6"} {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		outs[i], errs[i] = in.Windows.Run(cctx, netsh, "interface", family, "show", "subinterfaces")
		cancel()
	}
	return CheckWindows(WindowsOutput{IPv4: outs[0], IPv4Err: errs[0], IPv6: outs[1], IPv6Err: errs[1], NetworkingMode: mode})
}
