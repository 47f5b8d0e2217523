// Package agentstatus is the agent's status file (agent.json in the state
// directory): the counters the agent writes, the Status another process
// reads from them (`wslmtu status`, doctor), and the metrics snapshot both
// the agent and `status --prom` build from them.
//
// It may import fix (the path checks' type), internal/metrics, internal/proc
// and internal/statefile; the agent writes it, and doctor and the CLI read
// it without importing the agent.
package agentstatus
