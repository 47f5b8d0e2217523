package systemd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kardianos/service"

	"github.com/wslmtu/wslmtu/internal/proc"
	"github.com/wslmtu/wslmtu/internal/statefile"
)

// Options say what to install and how to find out about the host.
type Options struct {
	// Binary is the installed agent; default DefaultBinary.
	Binary string
	// IsWSL tells whether the host is WSL. It is asked only when systemd is
	// not running; nil means "not WSL".
	IsWSL func() bool
	// Revert undoes the agent's fixes. Uninstall calls it after the agent has
	// stopped (else the agent would put them back); nil leaves them in place.
	Revert func() error
	// Out receives messages for the user; default os.Stdout.
	Out io.Writer
	// Packaged: the unit file belongs to a package (PackagedUnitPath), for
	// its maintainer scripts. Install enables and (re)starts that unit
	// rather than writing one, and on a host with neither systemd nor WSL
	// only says that the agent was not started; Uninstall stops and
	// disables it and leaves the file to the package manager. The
	// /etc/wsl.conf fallback is the same as without a package.
	Packaged bool

	// Defaults are right for real use; tests point these elsewhere.
	WSLConf       string      // default WSLConfPath
	LogFile       string      // default DefaultLog (agent output when started from wsl.conf)
	SystemdBooted func() bool // default: /run/systemd/system exists (sd_booted)
}

func (o Options) withDefaults() Options {
	if o.Binary == "" {
		o.Binary = DefaultBinary
		if o.Packaged {
			o.Binary = PackagedBinary
		}
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.WSLConf == "" {
		o.WSLConf = WSLConfPath
	}
	if o.LogFile == "" {
		o.LogFile = DefaultLog
	}
	if o.SystemdBooted == nil {
		o.SystemdBooted = Booted
	}
	if o.IsWSL == nil {
		o.IsWSL = func() bool { return false }
	}
	return o
}

// Booted reports whether systemd is PID 1, the way sd_booted(3) does.
func Booted() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// ErrUnsupported is returned by Install on a host with neither systemd nor WSL.
var ErrUnsupported = errors.New("systemd is not running (no /run/systemd/system) and this is not WSL: " +
	"wslmtu install supports systemd, or WSL's /etc/wsl.conf [boot] command; " +
	"start `wslmtu run` from your own init system instead (or pass --assume-wsl on WSL)")

// Install installs and starts the agent, or updates and restarts it when it
// is installed already. With systemd as PID 1 it installs wslmtu.service;
// on WSL without systemd it adds a [boot] command to /etc/wsl.conf and
// starts the agent now; elsewhere it refuses with ErrUnsupported.
func Install(o Options) error {
	o = o.withDefaults()
	if err := checkBinary(o.Binary); err != nil {
		return err
	}
	switch {
	case o.SystemdBooted() && o.Packaged:
		return startPackagedUnit(o)
	case o.SystemdBooted():
		return installUnit(o)
	case o.IsWSL():
		return installWSLBoot(o)
	case o.Packaged:
		// A package must install in a chroot or an image build as well.
		fmt.Fprintf(o.Out, "systemd is not running and this is not WSL: the agent was not started "+
			"(it starts as %s.service once systemd runs)\n", ServiceName)
		return nil
	}
	return ErrUnsupported
}

// Uninstall stops the agent, reverts its fixes if asked, and removes what
// Install added (the unit, the wsl.conf boot command). Nothing installed is
// not an error.
func Uninstall(o Options) error {
	o = o.withDefaults()
	var errs []error
	found := false
	if o.Packaged {
		found = true
		if err := stopPackagedUnit(o); err != nil {
			errs = append(errs, err)
		}
	} else if _, err := os.Stat(UnitPath); err == nil {
		found = true
		if err := uninstallUnit(o); err != nil {
			errs = append(errs, err)
		}
	}
	had, err := uninstallWSLBoot(o)
	if err != nil {
		errs = append(errs, err)
	}
	found = found || had
	// Also an agent started by hand or by an older boot command: uninstall
	// means it no longer runs.
	n, err := stopAgents(o.Binary)
	if err != nil {
		errs = append(errs, err)
	}
	if n > 0 {
		fmt.Fprintf(o.Out, "stopped %d running agent(s)\n", n)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if o.Revert != nil {
		if err := o.Revert(); err != nil {
			return fmt.Errorf("agent removed, but reverting its fixes failed: %w", err)
		}
		fmt.Fprintln(o.Out, "reverted the agent's fixes")
	}
	if !found && n == 0 {
		fmt.Fprintln(o.Out, "wslmtu was not installed; nothing to remove")
	}
	return nil
}

func checkBinary(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("agent binary %q: must be an absolute path", path)
	}
	if strings.ContainsAny(path, " \t\n\"'\\%$&;|<>#") {
		return fmt.Errorf("agent binary %q: path must not contain spaces or shell/systemd special characters", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("agent binary: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("agent binary %q is not an executable file", path)
	}
	return nil
}

// program is the kardianos Interface; only Install/Uninstall/Start/Stop are
// used here, which never call it (`wslmtu run` is the agent).
type program struct{}

func (program) Start(service.Service) error { return nil }
func (program) Stop(service.Service) error  { return nil }

// newService picks kardianos' systemd backend explicitly: service.New would
// pick SysV (or upstart, openrc) silently when systemd is not PID 1.
func newService(o Options) (service.Service, error) {
	cfg := &service.Config{
		Name:        ServiceName,
		DisplayName: ServiceName,
		Description: "wslmtu agent",
		Executable:  o.Binary,
		Arguments:   []string{"run"},
		Option:      service.KeyValue{"SystemdScript": Unit(o.Binary)},
	}
	for _, s := range service.AvailableSystems() {
		if s.String() == "linux-systemd" {
			return s.New(program{}, cfg)
		}
	}
	return nil, errors.New("kardianos/service has no linux-systemd backend")
}

func installUnit(o Options) error {
	svc, err := newService(o)
	if err != nil {
		return err
	}
	current, statErr := os.ReadFile(UnitPath)
	update := statErr == nil
	if update && string(current) == Unit(o.Binary) {
		// Same unit: no reinstall (each daemon-reload costs a second or two);
		// make sure it is enabled and restart it, for a new binary.
		fmt.Fprintf(o.Out, "%s is up to date\n", UnitPath)
		if out, err := exec.Command("systemctl", "enable", ServiceName+".service").CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl enable %s.service: %v: %s", ServiceName, err, out)
		}
		if err := svc.Restart(); err != nil {
			return fmt.Errorf("%s.service did not restart: %w\n%s", ServiceName, err,
				systemctlOutput("status", "--no-pager", "--lines=15", ServiceName+".service"))
		}
		return finishUnitInstall(o, "restarted")
	}
	if update {
		// kardianos refuses to overwrite a unit: take the old one out first.
		// The stop also makes the new binary/unit take effect.
		fmt.Fprintf(o.Out, "updating %s\n", UnitPath)
		_ = svc.Stop()
		if err := svc.Uninstall(); err != nil {
			return fmt.Errorf("removing the old %s: %w", UnitPath, err)
		}
	}
	if err := svc.Install(); err != nil {
		_ = os.Remove(UnitPath)
		return fmt.Errorf("installing %s: %w", UnitPath, err)
	}
	if err := svc.Start(); err != nil {
		return fmt.Errorf("%s is installed and enabled but did not start: %w\n%s", ServiceName+".service", err,
			systemctlOutput("status", "--no-pager", "--lines=15", ServiceName+".service"))
	}
	if update {
		return finishUnitInstall(o, "updated and started")
	}
	return finishUnitInstall(o, "installed and started")
}

func finishUnitInstall(o Options, what string) error {
	// An older install without systemd (before systemd=true was set) must not
	// start a second agent from wsl.conf.
	if _, err := uninstallWSLBoot(o); err != nil {
		fmt.Fprintf(o.Out, "warning: %v\n", err)
	}
	fmt.Fprintf(o.Out, "%s %s.service (enabled at boot); logs: journalctl -u %s\n", what, ServiceName, ServiceName)
	return nil
}

// startPackagedUnit enables and (re)starts the unit a package installed:
// restart starts a stopped unit and makes an upgraded binary take over.
func startPackagedUnit(o Options) error {
	unit := ServiceName + ".service"
	for _, args := range [][]string{{"daemon-reload"}, {"enable", unit}} {
		if out, err := exec.Command("systemctl", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	if _, err := os.Stat(UnitPath); err == nil {
		fmt.Fprintf(o.Out, "warning: %s (from `wslmtu install` or install.sh) overrides the package's %s; "+
			"remove it with `sudo ./install.sh --uninstall` (or `sudo wslmtu uninstall --binary BINARY`)\n", UnitPath, PackagedUnitPath)
	}
	what := "started"
	if strings.TrimSpace(systemctlOutput("is-active", unit)) == "active" {
		what = "restarted" // an upgrade: the new binary takes over
	}
	if out, err := exec.Command("systemctl", "restart", unit).CombinedOutput(); err != nil {
		return fmt.Errorf("%s is enabled but did not start: %v: %s\n%s", unit, err, out,
			systemctlOutput("status", "--no-pager", "--lines=15", unit))
	}
	return finishUnitInstall(o, what)
}

// stopPackagedUnit stops and disables the package's unit; without a running
// systemd it only takes the unit out of multi-user.target.
func stopPackagedUnit(o Options) error {
	unit := ServiceName + ".service"
	if !o.SystemdBooted() {
		err := os.Remove("/etc/systemd/system/multi-user.target.wants/" + unit)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if out, err := exec.Command("systemctl", "disable", "--now", unit).CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl disable --now %s: %v: %s", unit, err, out)
	}
	_ = exec.Command("systemctl", "reset-failed", unit).Run()
	fmt.Fprintf(o.Out, "stopped and disabled %s\n", unit)
	return nil
}

func uninstallUnit(o Options) error {
	if !o.SystemdBooted() {
		// No manager to talk to: drop the files; the unit was not running.
		_ = os.Remove("/etc/systemd/system/multi-user.target.wants/" + ServiceName + ".service")
		if err := os.Remove(UnitPath); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "removed %s\n", UnitPath)
		return nil
	}
	svc, err := newService(o)
	if err != nil {
		return err
	}
	// Stop first: kardianos' Uninstall only disables and deletes, which would
	// leave the agent running without a unit.
	if err := svc.Stop(); err != nil {
		if out := systemctlOutput("is-active", ServiceName+".service"); strings.TrimSpace(out) == "active" {
			return fmt.Errorf("stopping %s.service: %w", ServiceName, err)
		}
	}
	if err := svc.Uninstall(); err != nil {
		return fmt.Errorf("removing %s: %w", UnitPath, err)
	}
	_ = exec.Command("systemctl", "reset-failed", ServiceName+".service").Run()
	fmt.Fprintf(o.Out, "stopped and removed %s.service\n", ServiceName)
	return nil
}

func systemctlOutput(args ...string) string {
	out, _ := exec.Command("systemctl", args...).CombinedOutput()
	return string(out)
}

func installWSLBoot(o Options) error {
	conf, exists, err := readConf(o.WSLConf)
	if err != nil {
		return err
	}
	if SystemdEnabled(conf) {
		return fmt.Errorf("%s has [boot] systemd=true but systemd is not running yet: "+
			"run `wsl --shutdown` in Windows, reopen this distro, then run `wslmtu install` again", o.WSLConf)
	}
	ours := BootCommand(o.Binary, o.LogFile)
	out, changed, err := AddBootCommand(conf, exists, ours)
	if err != nil {
		return fmt.Errorf("%s: %w", o.WSLConf, err)
	}
	if changed {
		if err := writeConf(o.WSLConf, out); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "added the agent to the [boot] command in %s\n", o.WSLConf)
	} else {
		fmt.Fprintf(o.Out, "%s already starts the agent at boot\n", o.WSLConf)
	}
	// Restart, so that an updated binary takes over now, as systemd would.
	if _, err := stopAgents(o.Binary); err != nil {
		return err
	}
	if err := startAgent(ours, o.Binary); err != nil {
		return fmt.Errorf("%w (see %s)", err, o.LogFile)
	}
	fmt.Fprintf(o.Out, "started the agent; it will also start with WSL; log: %s\n", o.LogFile)
	fmt.Fprint(o.Out, "note: systemd is not enabled in this distro. Better: add\n"+
		"  [boot]\n  systemd=true\n"+
		"to "+o.WSLConf+", run `wsl --shutdown` in Windows, reopen the distro and run `sudo wslmtu install` again\n"+
		"(the agent then runs as wslmtu.service, restarted if it stops, sandboxed, with a watchdog).\n")
	return nil
}

// uninstallWSLBoot removes our boot command; it reports whether there was one.
func uninstallWSLBoot(o Options) (bool, error) {
	conf, exists, err := readConf(o.WSLConf)
	if err != nil || !exists {
		return false, err
	}
	out, changed, remove, err := RemoveBootCommand(conf, BootCommand(o.Binary, o.LogFile))
	if err != nil {
		return false, fmt.Errorf("%s: %w", o.WSLConf, err)
	}
	if !changed {
		return false, nil
	}
	if remove {
		err = os.Remove(o.WSLConf)
	} else {
		err = writeConf(o.WSLConf, out)
	}
	if err != nil {
		return true, err
	}
	fmt.Fprintf(o.Out, "removed the agent from the [boot] command in %s\n", o.WSLConf)
	return true, nil
}

func readConf(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// writeConf replaces the file atomically, so WSL never reads half of it,
// keeping its permissions.
func writeConf(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	return statefile.ReplaceFile(path, data, mode, true)
}

// startAgent runs the boot command the way WSL does (sh as root) and waits
// until the agent process shows up.
func startAgent(command, binary string) error {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("starting the agent (%s): %v: %s", command, err, out)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids, err := proc.Agents(binary)
		if err != nil {
			return err
		}
		if len(pids) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the agent (%s run) exited right after it was started", binary)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopAgents sends SIGTERM (the agent's clean stop) and, after a grace period,
// SIGKILL. It returns how many agents it stopped.
func stopAgents(binary string) (int, error) {
	pids, err := proc.Agents(binary)
	if err != nil || len(pids) == 0 {
		return 0, err
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for proc.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if proc.Alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return len(pids), nil
}
