package windows

import (
	"fmt"
	"io"
	"slices"
)

// Format writes the human-readable `wslmtu.exe status`.
func (h HostStatus) Format(w io.Writer) {
	fmt.Fprintln(w, "Connected Windows adapters:")
	for _, a := range h.Interfaces {
		// The loopback counts (WSL does not leave it out) but its MTU,
		// 4294967295, never wins, so listing it only adds noise.
		if !a.Connected || (a.Loopback && (h.Outer == nil || a.MTU != h.Outer.MTU)) {
			continue
		}
		mark := ""
		if h.Outer != nil && a.MTU == h.Outer.MTU {
			mark = "  <- sets eth0"
		}
		if a.IsWSLAdapter() {
			mark += "  (WSL's own adapter; it counts too)"
		}
		fmt.Fprintf(w, "  %-4s  %-36s MTU %d%s\n", a.Family, a.Name, a.MTU, mark)
	}
	if h.Outer != nil {
		fmt.Fprintf(w, "eth0: %s (NAT mode; mirrored mode works differently)\n", h.Outer.Reason)
		fmt.Fprintf(w, "      a tunnel inside WSL crosses it unfragmented up to MTU %d\n", h.Outer.TunnelMTUFits())
	}
	if len(h.Distros) > 0 {
		fmt.Fprintln(w, "Distros:")
	}
	for i, d := range h.Distros {
		def := " "
		if d.Default {
			def = "*"
		}
		run := "stopped"
		if slices.Contains(h.Running, d.Name) {
			run = "running"
		}
		line := fmt.Sprintf("  %s %-20s WSL%d  %-8s", def, d.Name, d.Version, run)
		if i < len(h.Agents) {
			a := h.Agents[i]
			line += "  agent: " + a.State
			if a.Detail != "" {
				line += " (" + a.Detail + ")"
			}
		}
		fmt.Fprintln(w, line)
	}
	for _, n := range h.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// Format writes the human-readable `wslmtu.exe drops` report.
func (r DropReport) Format(w io.Writer) {
	s := r.Summary
	fmt.Fprintln(w, s.Verdict())
	if s.Total > 0 {
		fmt.Fprintln(w, "Drops by reason:")
		for _, c := range SortedCounts(s.ByReason) {
			fmt.Fprintf(w, "  %6d  %s\n", c.Count, c.Key)
		}
		fmt.Fprintln(w, "Drops by component:")
		for _, c := range SortedCounts(s.ByComponent) {
			fmt.Fprintf(w, "  %6d  %s\n", c.Count, c.Key)
		}
	}
	for _, e := range s.Examples {
		fmt.Fprintln(w, "  e.g.", e)
	}
}
