package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes, documented in --help and the README.
const (
	exitOK        = 0
	exitFailure   = 1 // something could not be done (netlink, iptables, state dir)
	exitUsage     = 2 // bad flags, bad config, unknown interface: nothing was changed
	exitUnhealthy = 3 // status/doctor/probe found a problem
)

// exitError carries an exit code up to main without printing twice.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error   { return &exitError{code: exitUsage, err: err} }
func failureErr(err error) error { return &exitError{code: exitFailure, err: err} }
func unhealthy(msg string) error { return &exitError{code: exitUnhealthy, err: errors.New(msg)} }

// version is set by the linker for releases and packages:
// -ldflags "-X main.version=1.2.3".
var version = "dev"

// env is what the command tree takes from outside; tests give their own.
type env struct {
	// version is what `wslmtu version` and the metrics report.
	version string
	// interfaces lists the host's interface names, for completing
	// --outer-interface and --tunnels.
	interfaces func() ([]string, error)
}

// cli is one command tree's shared state: the values its persistent flags
// are parsed into.
type cli struct {
	env        env
	configPath string
}

func newRootCmd(e env) *cobra.Command {
	c := &cli{env: e}
	root := &cobra.Command{
		Use:   "wslmtu",
		Short: "Keep WSL2 networking working when a tunnel (Tailscale, WireGuard) runs inside it",
		Long: `wslmtu keeps WSL2 networking working when a tunnel (Tailscale, WireGuard) runs
inside it: it raises eth0's MTU (or lowers the tunnel's, or clamps the TCP MSS)
so that the tunnel's packets are never fragmented on their way through WSL's
NAT, which drops fragments without an error.

Exit codes:
  0  done, or healthy
  1  something could not be done (netlink, iptables, the state directory)
  2  bad input: an unknown flag or value, an invalid config, a missing interface;
     nothing was changed
  3  status, doctor or probe found a problem`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// man pages made at build time must not carry the build's date twice.
		DisableAutoGenTag: true,
	}
	root.AddCommand(c.versionCmd())
	c.addPlatform(root)
	// A command without positional arguments completes no file names.
	for _, sub := range root.Commands() {
		if sub.Args == nil || sub.ValidArgsFunction != nil {
			continue
		}
		sub.ValidArgsFunction = cobra.NoFileCompletions
	}
	return root
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "wslmtu", c.version())
		},
	}
}

// execute runs the command tree on args and returns the exit code, with
// the error (if any) printed to stderr.
func execute(root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil { // nil: the command has said it all on stdout
			fmt.Fprintln(stderr, "wslmtu:", err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "wslmtu:", err)
	// cobra's own errors are about flags and arguments.
	return exitUsage
}

func main() {
	os.Exit(execute(newRootCmd(hostEnv()), os.Args[1:], os.Stdout, os.Stderr))
}
