// Command fakeagent stands in for wslmtu in the container tests of package
// systemd: "run" does what the sandbox must allow the real agent to do
// (netlink MTU change, iptables nft and legacy, the state dir), then behaves
// like a Type=notify service with a watchdog; "install"/"uninstall" call
// package systemd like the real CLI does, "config --default" prints the
// default config as the real one does. A config containing "fail" makes
// "run" exit 2 (a bad config), to test rollbacks.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/systemd"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fakeagent run|install|uninstall")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "--help":
		fmt.Println("fakeagent run|install|uninstall")
		return
	case "run":
		err = run()
	case "install":
		assume := len(os.Args) > 2 && os.Args[2] == "--assume-wsl"
		err = systemd.Install(systemd.Options{IsWSL: func() bool { return assume }})
	case "uninstall":
		err = systemd.Uninstall(systemd.Options{})
	case "config": // config --default [--assume-wsl], as install.sh calls it
		cfg, set := config.Default(), []string{}
		if len(os.Args) > 3 && os.Args[3] == "--assume-wsl" {
			cfg.AssumeWSL, set = true, append(set, "assume_wsl")
		}
		fmt.Print(config.DefaultFile(cfg, set...))
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeagent:", err)
		os.Exit(1)
	}
}

func run() error {
	if b, _ := os.ReadFile("/etc/wslmtu/wslmtu.toml"); strings.Contains(string(b), "fail = true") {
		fmt.Fprintln(os.Stderr, "bad config")
		os.Exit(2)
	}
	for _, c := range [][]string{
		{"ip", "link", "set", "dev", "lo", "mtu", "65000"},
		{"ip", "link", "set", "dev", "lo", "mtu", "65536"},
		{"iptables", "-w", "-t", "mangle", "-N", "FAKEAGENT"},
		{"iptables", "-w", "-t", "mangle", "-X", "FAKEAGENT"},
		{"ip6tables", "-w", "-t", "mangle", "-N", "FAKEAGENT"},
		{"ip6tables", "-w", "-t", "mangle", "-X", "FAKEAGENT"},
		{"iptables-legacy", "-w", "-t", "mangle", "-N", "FAKEAGENT"},
		{"iptables-legacy", "-w", "-t", "mangle", "-X", "FAKEAGENT"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	if err := os.WriteFile("/var/lib/wslmtu/fakeagent", []byte("ok\n"), 0o600); err != nil {
		return err
	}
	fmt.Println("fakeagent: sandbox allows netlink, iptables-nft, iptables-legacy and the state dir")
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); !ok || err != nil {
		return fmt.Errorf("sd_notify READY=1: sent=%v err=%v", ok, err)
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return fmt.Errorf("no watchdog: %v", err)
	}
	tick := time.NewTicker(interval / 3)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	for {
		select {
		case <-tick.C:
			_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		case <-sig:
			return nil
		}
	}
}
