package windows

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ServiceConfig is what `wslmtu.exe install` records for the service.
type ServiceConfig struct {
	// Distro to keep running; empty means the default distro.
	Distro string
	// RunAgent runs `wslmtu run` in the foreground as the keep-alive, for
	// distros without systemd where nothing else would start the agent.
	// Otherwise the keep-alive is `sleep infinity` and systemd runs the agent.
	RunAgent bool
}

// Command is one program the service runs, with the reason it runs it.
type Command struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
	Why  string   `json:"why"`
}

func (c Command) String() string {
	return c.Name + " " + strings.Join(c.Args, " ")
}

// ServicePlan is what the host service does for one distro.
type ServicePlan struct {
	Distro string `json:"distro"`
	// KeepAlive runs for the life of the service and is restarted when it
	// exits: WSL shuts a distro down once no wsl.exe client is attached, and
	// a stopped distro has no agent to repair eth0 when Windows changes it.
	KeepAlive Command `json:"keep_alive"`
	// OnNetworkChange runs after each (debounced) host network change: WSL
	// pushes a new eth0 MTU on every Windows connectivity change.
	OnNetworkChange Command `json:"on_network_change"`
}

// PlanService picks the distro and the commands the service runs.
func PlanService(distros []Distro, cfg ServiceConfig) (ServicePlan, error) {
	var d *Distro
	for i := range distros {
		if (cfg.Distro == "" && distros[i].Default) || (cfg.Distro != "" && strings.EqualFold(distros[i].Name, cfg.Distro)) {
			d = &distros[i]
			break
		}
	}
	switch {
	case d == nil && cfg.Distro != "":
		return ServicePlan{}, fmt.Errorf("no WSL distro named %q (installed: %s)", cfg.Distro, distroNames(distros))
	case d == nil:
		return ServicePlan{}, fmt.Errorf("no default WSL distro: pass --distro (installed: %s)", distroNames(distros))
	case d.Version != 2:
		return ServicePlan{}, fmt.Errorf("distro %q is WSL%d: only WSL2 has its own eth0 behind the Hyper-V NAT", d.Name, d.Version)
	}
	p := ServicePlan{Distro: d.Name}
	if cfg.RunAgent {
		p.KeepAlive = Command{Name: wslExe, Args: AgentCommand(d.Name, "run"),
			Why: "runs the wslmtu agent in the foreground, which also keeps the distro running"}
	} else {
		p.KeepAlive = Command{Name: wslExe, Args: []string{"--distribution", d.Name, "--user", "root", "--", "sleep", "infinity"},
			Why: "keeps the distro (and the agent systemd runs in it) running"}
	}
	p.OnNetworkChange = Command{Name: wslExe, Args: AgentCommand(d.Name, "fix"),
		Why: "Windows' network changed, so WSL may have pushed a new eth0 MTU: re-apply the fix"}
	return p, nil
}

func distroNames(ds []Distro) string {
	if len(ds) == 0 {
		return "none"
	}
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Name
	}
	return strings.Join(names, ", ")
}

// Supervisor runs a ServicePlan: the keep-alive, restarted with backoff
// when it exits, and the fix after host network changes. It is the service's
// whole behaviour; the Windows service wrapper only feeds it Changes.
type Supervisor struct {
	Runner  Runner
	Plan    ServicePlan
	Changes <-chan struct{}
	// Debounce coalesces the burst of notifications one Windows change
	// produces (interface up, address, route, MTU) into one fix.
	Debounce time.Duration
	// RestartMin/RestartMax bound the keep-alive's restart backoff.
	RestartMin, RestartMax time.Duration
	Logf                   func(format string, args ...any)
}

// Run blocks until ctx is done.
func (s *Supervisor) Run(ctx context.Context) error {
	logf := s.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.keepAlive(ctx, logf)
	}()
	defer func() { <-done }()

	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case _, ok := <-s.Changes:
			if !ok {
				s.Changes = nil // notifications ended; keep the distro alive anyway
				continue
			}
			if timer == nil {
				timer = time.NewTimer(s.Debounce)
			} else {
				timer.Stop()
				timer.Reset(s.Debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			c := s.Plan.OnNetworkChange
			out, err := s.Runner.Run(ctx, c.Name, c.Args...)
			if err != nil {
				logf("host network changed; %s failed: %v", c, err)
			} else {
				logf("host network changed; %s: %s", c, strings.TrimSpace(DecodeText(out)))
			}
		}
	}
}

func (s *Supervisor) keepAlive(ctx context.Context, logf func(string, ...any)) {
	lo, hi := s.RestartMin, s.RestartMax
	if lo <= 0 {
		lo = time.Second
	}
	if hi < lo {
		hi = lo
	}
	delay := lo
	c := s.Plan.KeepAlive
	for ctx.Err() == nil {
		began := time.Now()
		_, err := s.Runner.Run(ctx, c.Name, c.Args...)
		if ctx.Err() != nil {
			return
		}
		// A keep-alive that lived a while was healthy: start backoff over.
		if time.Since(began) > hi {
			delay = lo
		}
		logf("%s exited (%v); restarting in %s", c, err, delay)
		if sleepCtx(ctx, delay) != nil {
			return
		}
		delay = min(delay*2, hi)
	}
}
