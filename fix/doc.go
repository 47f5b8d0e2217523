// Package fix turns an observation into an ordered plan of actions and
// applies it. The planner is pure, so --dry-run, status, the agent's logs and
// the tests all print the same words.
//
// It owns the planner (NewPlan: detect.State, the revert record and the
// config in, actions with their reasons out), the appliers (Apply and
// Revert over the small Kernel interface, NetlinkKernel for the real one;
// the MSS rules through internal/firewall), the revert record
// (revert.json, firewall.json) and Host, which ties one host's observation,
// plan and application together for the CLI and the agent.
//
// It may import detect, internal/config, internal/firewall,
// internal/statefile and internal/tunnel; never the agent or cmd/.
package fix
