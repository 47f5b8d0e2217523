// Command wslmtu keeps WSL2 networking working when a tunnel runs inside it.
// Each command lives in its own file and registers itself on rootCmd in init();
// the logic lives in the packages, this command only parses flags and prints.
package main

import (
	"errors"
	"fmt"
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

var rootCmd = &cobra.Command{
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
	SilenceUsage: true,
	// Completion would be one more command to document and keep working.
	CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	SilenceErrors:     true,
}

func main() {
	err := rootCmd.Execute()
	if err == nil {
		os.Exit(exitOK)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil { // nil: the command has said it all on stdout
			fmt.Fprintln(os.Stderr, "wslmtu:", err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "wslmtu:", err)
	// cobra's own errors are about flags and arguments.
	os.Exit(exitUsage)
}
