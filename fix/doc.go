// Package fix turns an observation into an ordered plan of actions and
// applies it. The planner is pure, so --dry-run, status, the agent's logs and
// the tests all print the same words.
//
// It owns the planner (NewPlan: detect.State, the revert record and the
// config in, actions with their reasons out), the applier (Apply over the
// small Kernel interface, NetlinkKernel for the real one), revert, the MSS
// part of a plan and its rules in the firewall (through internal/firewall),
// the revert records (revert.json, firewall.json) and Host, which ties one
// host's observation, plan and application together.
//
// Each verb has one entry point, on Host: Plan (observe and plan, the
// firewall read but never changed), Fix (plan and apply, MTUs and MSS rules,
// under the state directory's lock), Revert (our MSS chains and every
// recorded value still ours) and SyncFirewall (the MSS rules alone, under
// the firewall's own lock: the agent runs it apart from its MTU repairs).
// Below Host only the pure layer is exported: NewPlan and Apply, because
// the agent's MTU path plans from its own model of the kernel, without
// Host's dumps and lock, and applies on every repair. Revert has no such
// caller, so its kernel half is not exported.
//
// fix does not rename internal/firewall's things: the MSS types' families
// and backends are firewall.Family and firewall.Backend, and a host that
// cannot clamp returns an error matching firewall.ErrUnavailable; callers
// that need those import internal/firewall.
//
// It may import detect, internal/config, internal/firewall,
// internal/statefile and internal/tunnel; never the agent or cmd/.
package fix
