package fix

import (
	"fmt"
	"strings"

	"github.com/wslmtu/wslmtu/detect"
)

// DescribeState renders an observation in the README's words.
func DescribeState(st detect.State) string {
	var b strings.Builder
	env := st.Env
	switch {
	case env.WSL && env.Assumed:
		fmt.Fprintf(&b, "environment: assumed WSL2 (--assume-wsl; %s)\n", env.Note)
	case env.WSL:
		fmt.Fprintf(&b, "environment: WSL%d", env.Version)
		if env.NetworkingMode != "" {
			fmt.Fprintf(&b, ", networking mode %s", env.NetworkingMode)
		}
		b.WriteString("\n")
		if env.Note != "" {
			fmt.Fprintf(&b, "  %s\n", env.Note)
		}
	default:
		fmt.Fprintf(&b, "environment: not WSL (%s)\n", env.Note)
	}
	fmt.Fprintf(&b, "  kernel: %s\n", env.Kernel)
	for _, e := range env.Evidence {
		fmt.Fprintf(&b, "  evidence: %s\n", e)
	}
	links := make([]string, 0, len(st.Links))
	for _, l := range st.Links {
		links = append(links, fmt.Sprintf("%s %d", l.Name, l.MTU))
	}
	fmt.Fprintf(&b, "interfaces (mtu): %s\n", strings.Join(links, ", "))
	if st.Outer != nil {
		fmt.Fprintf(&b, "outer interface: %s mtu %d (%s)\n", st.Outer.Name, st.Outer.MTU, st.OuterWhy)
	} else {
		b.WriteString("outer interface: none (no default route, no eth0)\n")
	}
	if len(st.Tunnels) == 0 {
		b.WriteString("tunnels: none\n")
	}
	for _, t := range st.Tunnels {
		fmt.Fprintf(&b, "tunnel: %s mtu %d (%d IPv6 addresses)\n", t.Name, t.MTU, t.IPv6Addrs)
	}
	for _, t := range st.DownTunnels {
		fmt.Fprintf(&b, "tunnel: %s mtu %d, down (left out)\n", t.Name, t.MTU)
	}
	return b.String()
}

// Healthy reports whether nothing needs to change.
func (r Report) Healthy() bool { return r.Plan.Empty() }

func (r Report) String() string {
	var b strings.Builder
	b.WriteString(DescribeState(r.State))
	fmt.Fprintf(&b, "plan (%s):\n", r.Plan.Strategy)
	for _, line := range strings.Split(strings.TrimRight(r.Plan.String(), "\n"), "\n") {
		fmt.Fprintf(&b, "  %s\n", line)
	}
	return b.String()
}

// Outcome is what a fix run did, in the plan's words: the changes written,
// then the plan's warnings and notes, which still apply after it.
func (r Report) Outcome() string {
	if len(r.Changes) == 0 && r.MSS == nil {
		return r.Plan.String()
	}
	var b strings.Builder
	for _, c := range r.Changes {
		fmt.Fprintln(&b, c)
	}
	if r.MSS != nil {
		fmt.Fprintln(&b, r.MSS)
	}
	for _, w := range r.Plan.Warnings {
		fmt.Fprintln(&b, "warning:", w)
	}
	for _, n := range r.Plan.Notes {
		fmt.Fprintln(&b, "note:", n)
	}
	return b.String()
}
