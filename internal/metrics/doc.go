// Package metrics renders the agent's counters and the host's MTUs in the
// Prometheus text format, for node_exporter's textfile collector
// (metrics_file) and `wslmtu status --prom`. It knows nothing about the
// agent: it turns a Snapshot of plain values into metrics through
// client_golang's registry, so names, types, escaping and order are the
// library's.
//
// It may import internal/statefile (to write the file safely) and
// client_golang; the agent builds its Snapshot.
package metrics
