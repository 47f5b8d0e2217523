// Package doctor runs wslmtu's health checks: each one turns observed facts
// (the environment, the plan, the MTUs, the firewall, the agent's counters,
// a sysctl, Windows' adapters) into a verdict with a one-line remedy. The
// check functions are pure; Run gathers the facts through Inputs, so tests
// feed fakes and the CLI only wires flags to Run and prints.
//
// It may import detect, fix, internal/config, internal/tunnel, windows (the
// netsh parsers and WSL's MTU rule) and internal/agentstatus (the agent's
// status file); never agent itself.
package doctor
