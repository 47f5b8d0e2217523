package windows

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kardianos/service"
	winapi "golang.org/x/sys/windows"
)

// ServiceName is the Windows service's name (sc.exe query wslmtu).
const ServiceName = "wslmtu"

// InstallOptions is what `wslmtu.exe install` passes.
type InstallOptions struct {
	Config ServiceConfig
	// User and Password are the account the service runs as. WSL distros are
	// registered per user (HKCU\...\Lxss): wsl.exe running as LocalSystem
	// sees none of them, so the service must run as the user who owns the
	// distro. The account needs the "Log on as a service" right.
	User     string
	Password string
}

func serviceConfig(cfg ServiceConfig, user, password string) *service.Config {
	args := []string{"service", "run"}
	if cfg.Distro != "" {
		args = append(args, "--distro", cfg.Distro)
	}
	if cfg.RunAgent {
		args = append(args, "--run-agent")
	}
	return &service.Config{
		Name:        ServiceName,
		DisplayName: "wslmtu (WSL2 tunnel MTU keeper)",
		Description: "Keeps a WSL2 distro running and re-applies `wslmtu fix` inside it after Windows network changes.",
		Arguments:   args,
		UserName:    user,
		Option: service.KeyValue{
			"Password": password,
			// Delayed: at boot the WSL service and the network come up first.
			"DelayedAutoStart":       true,
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "30s",
		},
	}
}

// Install registers and starts the service.
func Install(opts InstallOptions) error {
	if opts.User == "" {
		return errors.New("install: a user account is required: WSL distros are per user and LocalSystem sees none")
	}
	s, err := service.New(&program{}, serviceConfig(opts.Config, opts.User, opts.Password))
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("install service %s: %w", ServiceName, err)
	}
	if err := s.Start(); err != nil {
		return fmt.Errorf("service %s installed but did not start (does %s have the \"Log on as a service\" right?): %w", ServiceName, opts.User, err)
	}
	return nil
}

// Uninstall stops and removes the service.
func Uninstall() error {
	s, err := service.New(&program{}, serviceConfig(ServiceConfig{}, "", ""))
	if err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	// Not running is fine; only the removal must succeed.
	_ = s.Stop()
	if err := s.Uninstall(); err != nil {
		return fmt.Errorf("uninstall service %s: %w", ServiceName, err)
	}
	return nil
}

// RunService is the service's entry point (`wslmtu.exe service run`); run
// interactively it works in the foreground until Ctrl+C, which is how to try
// it without installing.
func RunService(cfg ServiceConfig) error {
	p := &program{cfg: cfg}
	s, err := service.New(p, serviceConfig(cfg, "", ""))
	if err != nil {
		return err
	}
	if p.log, err = s.Logger(nil); err != nil {
		return err
	}
	return s.Run()
}

type program struct {
	cfg    ServiceConfig
	log    service.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

// Start must return within seconds, so everything that talks to WSL runs in
// the goroutine.
func (p *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		p.run(ctx)
	}()
	return nil
}

func (p *program) Stop(service.Service) error {
	if p.cancel != nil {
		p.cancel()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	}
	return nil
}

func (p *program) run(ctx context.Context) {
	r := ExecRunner{}
	var plan ServicePlan
	// At boot the WSL service may not answer yet: retry until it does.
	for {
		out, err := r.Run(ctx, wslExe, "--list", "--verbose")
		if err == nil {
			var ds []Distro
			if ds, err = ParseDistros(out); err == nil {
				if plan, err = PlanService(ds, p.cfg); err == nil {
					break
				}
			}
		}
		p.log.Warningf("cannot plan the service yet: %v; retrying in 30s", err)
		if sleepCtx(ctx, 30*time.Second) != nil {
			return
		}
	}
	p.log.Infof("distro %s: keep-alive %q; on network change %q", plan.Distro, plan.KeepAlive, plan.OnNetworkChange)

	changes := make(chan struct{}, 1)
	stop, err := watchIPInterfaces(changes)
	if err != nil {
		p.log.Warningf("IP interface notifications unavailable (%v): polling every %s instead", err, pollInterval)
		go poll(ctx, changes)
	} else {
		defer stop()
	}
	// One fix at start: WSL set eth0 while we were not looking. Non-blocking,
	// a notification may already be queued.
	select {
	case changes <- struct{}{}:
	default:
	}
	sup := &Supervisor{Runner: r, Plan: plan, Changes: changes, Debounce: 3 * time.Second,
		RestartMin: 2 * time.Second, RestartMax: 2 * time.Minute,
		Logf: func(f string, a ...any) { p.log.Infof(f, a...) }}
	_ = sup.Run(ctx)
}

// pollInterval: only used when NotifyIpInterfaceChange fails. `wslmtu fix`
// is idempotent and writes nothing when eth0 is already right, and the agent
// inside the distro reacts to netlink at once anyway; the poll is a backstop,
// so minutes are fine and a short poll would only wake the VM for nothing.
const pollInterval = 5 * time.Minute

func poll(ctx context.Context, ch chan<- struct{}) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// watchIPInterfaces signals ch on every IP interface change of either family
// (adapter added or removed, connected state, MTU): the same events that make
// WSL push a new MTU into eth0. The callback runs on an OS thread pool, so it
// only does a non-blocking send; ch is buffered so bursts coalesce.
func watchIPInterfaces(ch chan<- struct{}) (stop func(), err error) {
	cb := winapi.NewCallback(func(callerContext, row, notificationType uintptr) uintptr {
		select {
		case ch <- struct{}{}:
		default:
		}
		return 0
	})
	var h winapi.Handle
	if err := winapi.NotifyIpInterfaceChange(winapi.AF_UNSPEC, cb, nil, false, &h); err != nil {
		return nil, fmt.Errorf("NotifyIpInterfaceChange: %w", err)
	}
	return func() { _ = winapi.CancelMibChangeNotify2(h) }, nil
}

// DefaultUser is the account `install` uses when none is given: the user
// running the command, as DOMAIN\name.
func DefaultUser() string {
	if u := os.Getenv("USERNAME"); u != "" {
		if d := os.Getenv("USERDOMAIN"); d != "" {
			return d + `\` + u
		}
		return `.\` + u
	}
	return ""
}
