// Package agent is the long-running loop behind `wslmtu run`: it follows the
// kernel's link, route and rule events and re-applies the plan whenever
// something (WSL, tailscaled, another tool) undoes it. It only decides when;
// detect, fix.NewPlan and fix.Apply decide what.
//
// It owns the agent's model of links, routes and rules (fed to
// detect.Derive, so the agent and `status` see alike), the reconcile after
// each burst of events, resubscribing after a lost subscription, the fight
// limiter, the config reload, the MSS worker, the health worker (metrics
// file and STATUS=), the path worker (the verify hosts' checks), the state directory's lock for its whole life, sd_notify, and
// the counters file (agent.json) that status and doctor read.
//
// It may import detect, fix, internal/agentstatus, internal/config,
// internal/firewall (whose ErrUnavailable tells a host that cannot clamp),
// internal/metrics, internal/netwatch, internal/ns, internal/probe and
// internal/statefile; never cmd/, systemd or windows. Tests run it on
// internal/testenv/fakekernel without root and on netlink in namespaces
// (internal/testenv/netnstest, internal/testenv/labtest).
package agent
