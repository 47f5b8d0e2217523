package windows

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Program names are given with .exe so the same calls work on Windows and
// from inside WSL through interop, where Windows programs need the suffix.
const (
	wslExe    = "wsl.exe"
	pktmonExe = "pktmon.exe"
	// agentBin is the Linux binary inside the distro; wsl.exe runs it with
	// the distro's PATH, where the install step puts it (/usr/local/bin).
	agentBin = "wslmtu"
)

// Agent states reported per distro.
const (
	AgentOK           = "ok"
	AgentUnhealthy    = "unhealthy"     // the agent ran and exited 3: it found a problem
	AgentNotInstalled = "not-installed" // wslmtu is not in the distro
	AgentNotRunning   = "not-running"   // distro stopped: not queried, that would boot it
	AgentNotWSL2      = "wsl1"          // WSL1 has no eth0 of its own, nothing to fix
	AgentError        = "error"
)

// AgentStatus is what the Linux agent in one distro said.
type AgentStatus struct {
	Distro string          `json:"distro"`
	State  string          `json:"state"`
	Detail string          `json:"detail,omitempty"`
	Report json.RawMessage `json:"report,omitempty"` // `wslmtu status --json` from inside the distro
}

// HostStatus is everything `wslmtu.exe status` shows.
type HostStatus struct {
	// Interfaces is Windows' IP interface table, both families.
	Interfaces []IPInterface `json:"interfaces"`
	Outer      *OuterChoice  `json:"outer,omitempty"`
	Distros    []Distro      `json:"distros"`
	Running    []string      `json:"running"`
	Agents     []AgentStatus `json:"agents"`
	Notes      []string      `json:"notes,omitempty"` // things that could not be read, and why
}

// Unhealthy reports whether any agent reported a problem.
func (h HostStatus) Unhealthy() bool {
	for _, a := range h.Agents {
		if a.State == AgentUnhealthy {
			return true
		}
	}
	return false
}

// Status gathers the host's view: the IP interfaces of both families as WSL
// reads them, the adapter that sets eth0, the distros, and the agent's own
// status from every running WSL2 distro. Only an unreadable interface table
// is an error; everything else is noted and the rest is still reported.
func Status(ctx context.Context, r Runner, t InterfaceTable) (HostStatus, error) {
	var h HostStatus
	var err error
	if h.Interfaces, err = t.IPInterfaces(); err != nil {
		return h, fmt.Errorf("read the IP interface table: %w", err)
	}
	if c, err := MinimumConnected(h.Interfaces); err != nil {
		h.Notes = append(h.Notes, err.Error())
	} else {
		h.Outer = &c
	}

	out, err := r.Run(ctx, wslExe, "--list", "--verbose")
	if err != nil {
		h.Notes = append(h.Notes, "WSL distros: "+strings.TrimSpace(firstLine(errorText(out, err))))
		return h, nil
	}
	if h.Distros, err = ParseDistros(out); err != nil {
		h.Notes = append(h.Notes, err.Error())
		return h, nil
	}
	// No running distro makes wsl.exe exit non-zero with a sentence: empty list.
	if out, err := r.Run(ctx, wslExe, "--list", "--running", "--quiet"); err == nil {
		h.Running = ParseRunning(out)
	}
	for _, d := range h.Distros {
		h.Agents = append(h.Agents, agentStatus(ctx, r, d, slices.Contains(h.Running, d.Name)))
	}
	return h, nil
}

func agentStatus(ctx context.Context, r Runner, d Distro, running bool) AgentStatus {
	a := AgentStatus{Distro: d.Name}
	switch {
	case d.Version != 2:
		a.State, a.Detail = AgentNotWSL2, "WSL1 shares the Windows network stack: no eth0 MTU to manage"
		return a
	case !running:
		a.State, a.Detail = AgentNotRunning, "not queried: running a command would start the distro"
		return a
	}
	out, err := r.Run(ctx, wslExe, AgentCommand(d.Name, "status", "--json")...)
	text := errorText(out, err)
	switch code := exitCode(err); {
	case err == nil:
		a.State = AgentOK
	case code == 3:
		a.State = AgentUnhealthy
	case code == 127 || strings.Contains(text, "No such file or directory") || strings.Contains(text, "execvpe"):
		a.State, a.Detail = AgentNotInstalled, "wslmtu is not installed in this distro"
		return a
	default:
		a.State, a.Detail = AgentError, strings.TrimSpace(firstLine(text))
		return a
	}
	body := []byte(strings.TrimSpace(DecodeText(out)))
	if json.Valid(body) && len(body) > 0 {
		a.Report = json.RawMessage(body)
	} else {
		a.Detail = strings.TrimSpace(firstLine(string(body)))
	}
	return a
}

// AgentCommand is the wsl.exe argument list that runs `wslmtu ARGS...` as
// root inside distro. `--` stops wsl.exe from reading the agent's flags and
// runs the program directly, without a login shell.
func AgentCommand(distro string, args ...string) []string {
	return append([]string{"--distribution", distro, "--user", "root", "--", agentBin}, args...)
}
