package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/tunnel"
	"github.com/wslmtu/wslmtu/windows"
)

// Check names; the per-tunnel checks append the tunnel's name
// (MTUCheckName, IPv6CheckName), and NameMTU / NameIPv6 alone are used when
// there is no tunnel to check.
const (
	NameObserve     = "observe"
	NameEnvironment = "environment"
	NameAgent       = "agent"
	NamePlan        = "plan"
	NameMTU         = "mtu"
	NameMSS         = "mss clamp"
	NameIPv6        = "ipv6"
	NameTimestamps  = "tcp timestamps"
	NameWindows     = "windows adapters"
	NameRecord      = "revert record"
	NameScope       = "outer scope"
	// NamePath starts each path check's name: "path 100.64.0.2".
	NamePath = "path"
)

// MTUCheckName and IPv6CheckName name the per-tunnel checks.
func MTUCheckName(tunnel string) string  { return NameMTU + " " + tunnel }
func IPv6CheckName(tunnel string) string { return NameIPv6 + " " + tunnel }

// CheckEnvironment: wslmtu only has work on WSL2.
func CheckEnvironment(env detect.Environment) Check {
	c := Check{Name: NameEnvironment}
	switch {
	case !env.WSL:
		c.Status = Fail
		c.Detail = "not WSL: " + env.Note
		c.Remedy = "if this is a WSL2 distro after all, pass --assume-wsl (or set assume_wsl = true)"
	case env.Version == 1:
		c.Status = Fail
		c.Detail = "WSL1 has no eth0 MTU to fix: it shares Windows' network stack"
		c.Remedy = "convert the distro to WSL2 (`wsl.exe --set-version <distro> 2`) if the tunnel should run inside it"
	case env.Assumed:
		c.Status = OK
		c.Detail = "assumed WSL2 (--assume-wsl)" + withMode(env.NetworkingMode)
		if env.Note != "" {
			c.Detail += "; detection said: " + env.Note
		}
	default:
		c.Status = OK
		c.Detail = fmt.Sprintf("WSL%d", env.Version) + withMode(env.NetworkingMode)
	}
	if c.Status == OK && env.ModeEvidence != "" {
		c.Detail += "\nmode: " + env.ModeEvidence
	}
	if c.Status == OK && env.NetworkingMode == detect.ModeMirrored {
		c.Detail += "\nmirrored networking: each interface mirrors a Windows adapter, and Windows drops larger frames without an error: " +
			"the outer interface is never raised by mtu_strategy auto; the tunnel is lowered (or the MSS clamped) instead"
	}
	return c
}

func withMode(mode string) string {
	if mode == "" {
		return ""
	}
	return ", networking mode " + mode
}

// agentRemedy is the one way back to a running agent.
const agentRemedy = "sudo ./install.sh (or `sudo systemctl start wslmtu`)"

// CheckAgent: without the agent, the next MTU WSL or tailscaled pushes
// undoes a one-time fix.
func CheckAgent(stateDir string, st agentstatus.Status, err error) Check {
	c := Check{Name: NameAgent}
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("cannot read the agent's counters in %s: %v", stateDir, err)
		c.Remedy = "check that --state-dir is the agent's (default " + config.DefaultStateDir + ") and readable (run as root)"
		return c
	}
	if !st.Known {
		c.Status, c.Detail = Fail, "no agent has run with state dir "+stateDir+": a one-time fix is lost on the next Windows network change or tunnel reconnect"
		c.Remedy = agentRemedy
		return c
	}
	var b strings.Builder
	switch {
	case st.Running:
		c.Status = OK
		fmt.Fprintf(&b, "running (pid %d, since %s)", st.PID, st.Started.Local().Format(time.DateTime))
	case !st.Stopped.IsZero():
		c.Status, c.Remedy = Fail, agentRemedy
		fmt.Fprintf(&b, "not running: stopped at %s", st.Stopped.Local().Format(time.DateTime))
	default:
		c.Status, c.Remedy = Fail, agentRemedy
		fmt.Fprintf(&b, "not running: pid %d is gone (it was not stopped cleanly)", st.PID)
	}
	fmt.Fprintf(&b, "; %d repairs", st.Repairs)
	if st.Fights > 0 {
		fmt.Fprintf(&b, ", %d fights", st.Fights)
	}
	if st.LastRepair != nil {
		fmt.Fprintf(&b, "\nlast repair: %s", st.LastRepair)
	}
	c.Detail = b.String()
	return c
}

// CheckPlan is the host's health, the one verdict status, the metrics and
// the agent's unit status give too (fix.Report.Health), with the plan's
// changes and warnings below it.
func CheckPlan(r fix.Report) Check {
	p := r.Plan
	h := r.Health()
	c := Check{Name: NamePlan}
	lines := p.Changes()
	if p.MSS.NeedsChange() {
		lines = append(lines, strings.TrimRight(strings.SplitN(p.MSS.String(), "\n", 2)[0], ":"))
	}
	var extra []string
	for _, w := range p.Warnings {
		extra = append(extra, "warning: "+w)
	}
	switch {
	case !h.Managed:
		c.Status = Skip
		c.Detail = "not applied here: " + p.Refused
		lines = append(lines, extra...)
	case h.Healthy:
		c.Status = OK
		c.Detail = fmt.Sprintf("nothing to change (mtu_strategy %s)", p.Strategy)
		lines = extra
	default:
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s (mtu_strategy %s)", strings.Join(h.Problems, "; "), p.Strategy)
		lines = append(lines, extra...)
		if len(p.Changes()) > 0 || p.MSS.NeedsChange() {
			c.Remedy = "run `wslmtu fix` (and keep it applied with the agent: sudo ./install.sh)"
		}
	}
	if p.ChosenWhy != "" && p.Refused == "" {
		lines = append([]string{"auto: " + string(p.Chosen) + ": " + p.ChosenWhy}, lines...)
	}
	if len(lines) > 0 {
		c.Detail += "\n" + strings.Join(lines, "\n")
	}
	return c
}

// CheckMTUs: each tunnel's packets, once wrapped, must fit the outer
// interface, or the NAT drops their fragments and large transfers hang. The
// requirement is the tunnel kind's (internal/tunnel). Where the plan clamps
// the MSS instead (mirrored mode), a tunnel that does not fit is a warning:
// TCP works, UDP and ICMP above the limit do not.
func CheckMTUs(st detect.State, cfg config.Config, p fix.Plan) []Check {
	switch {
	case len(st.Tunnels) == 0:
		d := fmt.Sprintf("no tunnel found (%s)", strings.Join(cfg.Tunnels, ", "))
		if len(st.MissingTunnels) > 0 {
			d += ": " + strings.Join(st.MissingTunnels, ", ") + " not present (tunnel not connected?)"
		}
		return []Check{{Name: NameMTU, Status: Skip, Detail: d}}
	case st.Outer == nil:
		return []Check{{Name: NameMTU, Status: Fail, Detail: "no outer interface: no default route and no eth0",
			Remedy: "name it with --outer-interface (or outer_interface in the config)"}}
	}
	outer := *st.Outer
	clamped := p.MSS != nil && p.MSS.Clamp && p.MSS.State == fix.MSSInSync
	var checks []Check
	for _, t := range st.Tunnels {
		c := Check{Name: MTUCheckName(t.Name)}
		spec := detect.SpecOf(t)
		need := spec.Need(t.MTU)
		if outer.MTU >= need {
			c.Status = OK
			c.Detail = fmt.Sprintf("%s %d ≥ %d (%s)", outer.Name, outer.MTU, need, spec.Reason(t.Name, t.MTU))
			checks = append(checks, c)
			continue
		}
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s %d < %d (%s): %s", outer.Name, outer.MTU, need, spec.Reason(t.Name, t.MTU), lost(spec, outer.MTU, t.MTU))
		remedy := fmt.Sprintf("run `wslmtu fix` (%s needs %d", outer.Name, need)
		if mtu, ok, _ := spec.LargestTunnelMTU(outer.MTU); ok && mtu >= tunnel.MinIPv4MTU {
			remedy += fmt.Sprintf(", or %s at most %d with --mtu-strategy lower-tunnel", t.Name, mtu)
		}
		c.Remedy = remedy + ")"
		if clamped {
			c.Status = Warn
			c.Detail += "; TCP is clamped to fit (mss clamp), UDP and ICMP above that still are lost"
			c.Remedy = ""
		}
		checks = append(checks, c)
	}
	return checks
}

// lost says which packets are lost on each underlay.
func lost(spec tunnel.Spec, outer, tunnelMTU int) string {
	v4, v4all := spec.LargestInner(outer, tunnelMTU, tunnel.IPv4)
	v6, _ := spec.LargestInner(outer, tunnelMTU, tunnel.IPv6)
	switch {
	case spec.Kind == tunnel.ZeroTier:
		return "zerotier-one's full-size UDP packets are fragmented and lost, whatever the size of the packets inside"
	case v4all:
		return fmt.Sprintf("fine over an IPv4 underlay, but over IPv6 packets over %d bytes are lost", v6)
	}
	return fmt.Sprintf("packets over %d bytes are lost (over %d with an IPv6 underlay)", v4, v6)
}

// CheckMSS: with mss_clamp on, the firewall must be able to clamp (an
// iptables backend and the TCPMSS target) and hold our rules.
func CheckMSS(cfg config.Config, p fix.Plan) Check {
	c := Check{Name: NameMSS}
	m := p.MSS
	switch {
	case !cfg.MSSClamp && m == nil:
		c.Status, c.Detail = Skip, "mss_clamp is off"
		return c
	case !cfg.MSSClamp:
		c.Status, c.Detail = Fail, "mss_clamp is off, but our chains are still in the firewall"
		if m.Backend != "" {
			c.Detail += " (iptables " + m.Backend + ")"
		}
		c.Remedy = "run `wslmtu fix` to remove them (or `wslmtu revert`)"
		return c
	case m == nil || m.Refused != "":
		c.Status, c.Detail = Fail, "mss_clamp is on but no MSS could be planned"
		if len(p.Warnings) > 0 {
			c.Detail += ": " + strings.Join(p.Warnings, "; ")
		}
		c.Remedy = "set mss, or name the outer interface with --outer-interface"
		return c
	}
	via := "iptables"
	if m.Backend != "" {
		via += " " + m.Backend
	}
	families := make([]string, 0, len(m.Families))
	for _, f := range m.Families {
		families = append(families, f.Tool())
	}
	switch m.State {
	case fix.MSSUnavailable:
		c.Status, c.Detail = Fail, "cannot clamp: "+m.Detail
		c.Remedy = "install iptables (`sudo apt install iptables`) on a kernel with the TCPMSS target (xt_TCPMSS), or rely on the MTU fix alone"
		return c
	case fix.MSSInSync:
		c.Status = OK
		c.Detail = fmt.Sprintf("rules in place (%s): IPv4 %d, IPv6 %d", via, m.MSS4, m.MSS6)
	case fix.MSSUnknown:
		c.Status = Skip
		c.Detail = fmt.Sprintf("firewall not read (%s)", via)
	default:
		c.Status = Fail
		what := "our rules are not in the firewall"
		if m.State == fix.MSSDiffers {
			what = "our rules differ from the plan"
		}
		c.Detail = fmt.Sprintf("%s (%s): want IPv4 %d, IPv6 %d", what, via, m.MSS4, m.MSS6)
		if m.Detail != "" {
			c.Detail += "; " + m.Detail
		}
		c.Remedy = "run `wslmtu fix`"
	}
	if len(families) > 0 {
		c.Detail += "\nfamilies: " + strings.Join(families, ", ")
	}
	return c
}

// CheckIPv6: Linux deletes a link's IPv6 addresses when its MTU goes below
// 1280, and raising it again does not bring them back.
func CheckIPv6(st detect.State) []Check {
	if len(st.Tunnels) == 0 {
		return []Check{{Name: NameIPv6, Status: Skip, Detail: "no tunnel found"}}
	}
	var checks []Check
	for _, t := range st.Tunnels {
		c := Check{Name: IPv6CheckName(t.Name)}
		switch {
		case t.MTU < config.MinMTU && t.IPv6Addrs == 0:
			c.Status = Fail
			c.Detail = fmt.Sprintf("%s lost its IPv6 addresses after a too-low MTU (%d < %d, the IPv6 minimum)", t.Name, t.MTU, config.MinMTU)
			c.Remedy = fmt.Sprintf("raise its MTU to %d or more (use --mtu-strategy raise-outer), then restart the tunnel (%s)",
				config.MinMTU, restartCommand(t.Name))
		case t.MTU < config.MinMTU:
			c.Status = Warn
			c.Detail = fmt.Sprintf("%s mtu %d is below %d: Linux will delete its %d IPv6 addresses", t.Name, t.MTU, config.MinMTU, t.IPv6Addrs)
			c.Remedy = "use --mtu-strategy raise-outer, which leaves the tunnel at its own MTU"
		case t.IPv6Addrs == 0:
			c.Status = OK
			c.Detail = fmt.Sprintf("mtu %d carries IPv6; no global IPv6 address (fine on an IPv4-only tunnel; if it had some, restart it: %s)",
				t.MTU, restartCommand(t.Name))
		default:
			c.Status = OK
			c.Detail = fmt.Sprintf("mtu %d, %d global IPv6 address(es)", t.MTU, t.IPv6Addrs)
		}
		checks = append(checks, c)
	}
	return checks
}

// restartCommand is how the tunnel's owner recreates it with its addresses.
func restartCommand(tunnel string) string {
	if strings.HasPrefix(tunnel, "tailscale") {
		return "`sudo tailscale down && sudo tailscale up`"
	}
	return fmt.Sprintf("`sudo wg-quick down %s && sudo wg-quick up %s`", tunnel, tunnel)
}

// CheckTCPTimestamps points at the look-alike: TCP stalls on WSL reported in
// microsoft/WSL#40615 that go away with timestamps off are not an MTU problem,
// so they are mentioned as a warning, never a failure.
func CheckTCPTimestamps(v Sysctl) Check {
	c := Check{Name: NameTimestamps}
	switch {
	case errors.Is(v.Err, fs.ErrNotExist):
		c.Status, c.Detail = Skip, "net.ipv4.tcp_timestamps not readable here"
	case v.Err != nil:
		c.Status, c.Detail = Skip, "reading net.ipv4.tcp_timestamps: "+v.Err.Error()
	case v.Value == "0":
		c.Status = OK
		c.Detail = "net.ipv4.tcp_timestamps = 0 (the workaround for the microsoft/WSL#40615 stall is in place)"
	default:
		// The kernel default; a warning here would show on every healthy
		// host, so the look-alike is named in the detail only.
		c.Status = OK
		c.Detail = fmt.Sprintf("net.ipv4.tcp_timestamps = %s (the default); if TCP still stalls once the MTU checks pass, "+
			"that is a different problem (microsoft/WSL#40615), reported to go away with `sudo sysctl -w net.ipv4.tcp_timestamps=0`", v.Value)
	}
	return c
}

// WindowsOutput is what netsh.exe printed for each family, or why it could not.
type WindowsOutput struct {
	IPv4, IPv6       []byte
	IPv4Err, IPv6Err error
	NetworkingMode   string
}

// CheckWindows lists Windows' adapters and names the one WSL copies into
// eth0 (the smallest connected one, WSL's own vEthernet included, in NAT
// mode). It is information: the MTU check says whether that value hurts.
func CheckWindows(out WindowsOutput) Check {
	c := Check{Name: NameWindows}
	if out.IPv4Err != nil {
		c.Status, c.Detail = Warn, "netsh.exe interface ipv4 show subinterfaces: "+out.IPv4Err.Error()
		c.Remedy = "check WSL interop (`netsh.exe` from a shell); the other checks do not need it"
		return c
	}
	v4, err := windows.ParseSubinterfaces(out.IPv4)
	if err != nil {
		c.Status, c.Detail = Warn, err.Error()
		return c
	}
	lists := [][]windows.Adapter{tag(v4, "ipv4")}
	var notes []string
	if out.IPv6Err == nil {
		if v6, err := windows.ParseSubinterfaces(out.IPv6); err == nil {
			lists = append(lists, tag(v6, "ipv6"))
		} else {
			notes = append(notes, "ipv6 list unreadable: "+err.Error())
		}
	} else {
		notes = append(notes, "ipv6 list unavailable: "+out.IPv6Err.Error())
	}

	c.Status = OK
	var lines []string
	for _, list := range lists {
		for _, a := range list {
			if a.IsLoopback() {
				continue
			}
			state := "disconnected"
			if a.Connected() {
				state = "connected"
			}
			lines = append(lines, fmt.Sprintf("%s %s mtu %d, %s", a.Family, a.Name, a.MTU, state))
		}
	}
	choice, err := windows.ChooseOuter(lists...)
	switch {
	case out.NetworkingMode == "mirrored":
		c.Detail = "mirrored networking: each Windows adapter appears as its own interface, eth0 is not set from the smallest"
	case err != nil:
		c.Detail = err.Error()
	case choice.MTU < 1500:
		c.Detail = fmt.Sprintf("%s pulls eth0 down to %d: %s", choice.Adapter.Name, choice.MTU, choice.Reason)
	default:
		c.Detail = choice.Reason
	}
	lines = append(lines, notes...)
	if len(lines) > 0 {
		c.Detail += "\n" + strings.Join(lines, "\n")
	}
	return c
}

func tag(list []windows.Adapter, family string) []windows.Adapter {
	out := make([]windows.Adapter, len(list))
	for i, a := range list {
		a.Family = family
		out[i] = a
	}
	return out
}

// CheckScope: with outer_scope = "tunnel", a raised outer interface must
// carry only the tunnels' own packets; a tunnel whose packets cannot be told
// apart makes the raise apply to everything.
func CheckScope(st detect.State, cfg config.Config, p fix.Plan) Check {
	c := Check{Name: NameScope}
	switch {
	case cfg.OuterScope == config.ScopeAll:
		c.Status, c.Detail = Skip, "outer_scope = \"all\": a raised outer interface carries everything at its new mtu"
		return c
	case st.Outer == nil || p.Chosen != config.RaiseOuter:
		c.Status, c.Detail = Skip, fmt.Sprintf("the outer interface is not raised (mtu_strategy %s)", p.Chosen)
		return c
	}
	var unknown []string
	for _, t := range st.Tunnels {
		if detect.SpecOf(t).Need(t.MTU) > p.WindowsMTU && p.WindowsMTU > 0 && !t.Tunnel.Identified() {
			unknown = append(unknown, t.Name)
		}
	}
	switch {
	case len(unknown) > 0:
		c.Status = Warn
		c.Detail = fmt.Sprintf("%s's own packets cannot be recognised: %s is raised for all packets, and a Windows VPN that drops larger packets breaks other traffic",
			strings.Join(unknown, ", "), st.Outer.Name)
		c.Remedy = fmt.Sprintf("give its mark or port in a [[tunnel]] table (name = %q, fwmark = \"0x…\" or port = N)", unknown[0])
	case p.WindowsMTU == 0:
		c.Status = OK
		c.Detail = fmt.Sprintf("%s %d carries the tunnels: nothing is raised, every packet keeps what Windows chose", st.Outer.Name, st.Outer.MTU)
	default:
		// Read from the kernel, not from the plan: a route with an mtu of its
		// own, a flushed table or a missing rule shows here as it is.
		lines, ok := fix.ScopeInForce(st, p)
		c.Status = OK
		c.Detail = fmt.Sprintf("every packet but the tunnels' own keeps %d, what Windows chose", p.WindowsMTU)
		switch {
		case !ok && !p.Empty():
			c.Status = Warn
			c.Detail = fmt.Sprintf("the tunnel scope is not in force yet (the plan's changes are pending): every packet but the tunnels' own is to keep %d, what Windows chose", p.WindowsMTU)
			c.Remedy = "sudo wslmtu fix (or start the agent: sudo systemctl start wslmtu)"
		case !ok:
			c.Status = Fail
			c.Detail = fmt.Sprintf("the tunnel scope is not in force although nothing is left to change: other packets may leave above %d, what Windows chose, or the tunnels' own below what they need", p.WindowsMTU)
			c.Remedy = "report this with `wslmtu status --json`; `sudo wslmtu fix --mtu-strategy raise-outer --outer-scope all` raises eth0 for every packet meanwhile"
		}
		if len(lines) > 0 {
			c.Detail += "\n" + strings.Join(lines, "\n")
		}
		for _, t := range st.Tunnels {
			if t.Tunnel.Identified() {
				c.Detail += fmt.Sprintf("\n%s: %s (evidence: %s)", t.Name, t.Tunnel.Selector(), t.Tunnel.IdentifiedBy)
			}
		}
	}
	return c
}

// CheckRecord: a damaged revert record stops fix and revert, which will
// not guess what to put back.
func CheckRecord(found bool, err string, path string) Check {
	c := Check{Name: NameRecord}
	switch {
	case err != "":
		c.Status, c.Detail = Fail, err
		c.Remedy = fmt.Sprintf("check the MTUs (`wslmtu status`), then move the record aside (sudo mv %s %s.bad) and run `wslmtu fix`", path, path)
	case !found:
		c.Status, c.Detail = OK, "none: wslmtu has changed nothing here"
	default:
		c.Status, c.Detail = OK, path
	}
	return c
}

// CheckPaths turns path checks (made by doctor itself, now) into verdicts:
// a path broken while the plan is in force fails, with the likely side;
// one broken because the fix is not applied yet, or that could not be
// checked, warns (the plan check already fails for the former).
func CheckPaths(paths []fix.PathCheck) []Check {
	var out []Check
	for _, p := range paths {
		c := Check{Name: NamePath + " " + p.Host}
		largest := "nothing"
		if p.Largest >= 0 {
			largest = fmt.Sprintf("%d bytes", p.Largest)
		}
		c.Detail = fmt.Sprintf("via %s: must carry %d bytes (%s); largest that crossed: %s; checked %s\n%s",
			p.Interface, p.Size, p.Why, largest, p.Checked.Local().Format(time.DateTime), p.Evidence)
		switch {
		case p.Verdict == fix.PathError:
			c.Status, c.Detail = Warn, "cannot check: "+p.Evidence
		case p.OK():
			c.Status = OK
		case p.Broken():
			c.Status = Fail
			c.Detail += "\nlikely side: " + string(p.Side)
			switch p.Side {
			case fix.SideWindows:
				c.Remedy = "keep the Windows side's packets at what Windows chose: outer_scope = \"tunnel\"; or ask why the Windows (VPN) adapter carries less than it says"
			case fix.SideOurRules:
				c.Remedy = "tell wslmtu how to recognise the tunnel's packets: a [[tunnel]] fwmark or port that the tunnel really uses"
			default:
				c.Remedy = "the tunnel's peer (or the path beyond Windows) carries less: lower the tunnel's MTU on both ends"
			}
		default:
			c.Status = Warn
			if p.Side != "" {
				c.Detail += "\nlikely side: " + string(p.Side)
			}
		}
		out = append(out, c)
	}
	return out
}
