package fix

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// WireGuardOverhead is what a WireGuard tunnel adds to every packet on the
// worst underlay (IPv6: 40 + 8 UDP + 32 WireGuard); see internal/tunnel.
const WireGuardOverhead = tunnel.IPv6Header + tunnel.UDPHeader + tunnel.WireGuardHeader

// Action is one MTU change, with the reason it is needed.
type Action struct {
	Link   string `json:"interface"`
	Index  int    `json:"index,omitempty"`
	From   int    `json:"from"`
	To     int    `json:"to"`
	Reason string `json:"reason"`
}

func (a Action) String() string {
	return fmt.Sprintf("%s: mtu %d → %d (%s)", a.Link, a.From, a.To, a.Reason)
}

// RouteOp is what a route action does.
type RouteOp string

const (
	RouteSetMTU RouteOp = "mtu"    // give the route an MTU (0: none)
	RouteAdd    RouteOp = "add"    // add it (to our table)
	RouteDelete RouteOp = "delete" // delete it (from our table)
)

// RouteAction is one change of a route.
type RouteAction struct {
	Op     RouteOp      `json:"op"`
	Route  detect.Route `json:"route"`
	From   int          `json:"from,omitempty"` // the route's mtu now (RouteSetMTU)
	To     int          `json:"to,omitempty"`
	Reason string       `json:"reason"`
}

func (a RouteAction) String() string {
	r := a.Route
	r.MTU = 0
	switch a.Op {
	case RouteAdd:
		return fmt.Sprintf("route %s: add (%s)", r, a.Reason)
	case RouteDelete:
		return fmt.Sprintf("route %s: delete (%s)", r, a.Reason)
	}
	mtu := func(v int) string {
		if v == 0 {
			return "none"
		}
		return fmt.Sprint(v)
	}
	if a.From == 0 {
		return fmt.Sprintf("route %s: mtu %d (%s)", r, a.To, a.Reason)
	}
	return fmt.Sprintf("route %s: mtu %s → %s (%s)", r, mtu(a.From), mtu(a.To), a.Reason)
}

// RuleAction adds or deletes one policy rule.
type RuleAction struct {
	Add    bool        `json:"add"`
	Rule   detect.Rule `json:"rule"`
	Reason string      `json:"reason"`
}

func (a RuleAction) String() string {
	op := "delete"
	if a.Add {
		op = "add"
	}
	return fmt.Sprintf("%s rule %s: %s (%s)", detect.Tool(a.Rule.Family), a.Rule, op, a.Reason)
}

// Plan is what fix would do now, and why.
type Plan struct {
	Strategy config.Strategy `json:"mtu_strategy"`
	// Chosen is the strategy in effect (auto's pick), ChosenWhy why.
	Chosen    config.Strategy `json:"chosen_strategy"`
	ChosenWhy string          `json:"chosen_why,omitempty"`
	// Scope is the outer scope in effect when the outer interface is
	// raised; WindowsMTU the MTU Windows gave it (what every packet but the
	// tunnel's own keeps with scope tunnel).
	Scope      config.Scope  `json:"outer_scope,omitempty"`
	WindowsMTU int           `json:"windows_mtu,omitempty"`
	Rules      []RuleAction  `json:"rules,omitempty"`
	Routes     []RouteAction `json:"routes,omitempty"`
	Actions    []Action      `json:"actions"`
	// Policy is the tunnel scope's table and rules as they will be once
	// the plan is applied (nil: none), for the revert record.
	Policy *PolicyRecord `json:"policy,omitempty"`
	// Forget are recorded interfaces whose value somebody else has changed
	// since wslmtu wrote it and that no target needs: they are no longer
	// wslmtu's, and revert must leave them alone.
	Forget       []string       `json:"-"`
	ForgetRoutes []detect.Route `json:"-"`
	// Refused is set when the plan must not be applied (not WSL); the
	// actions are still listed so the user sees what would happen.
	Refused  string   `json:"refused,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// MSS is the clamping part; nil when mss_clamp is off and nothing of
	// ours is left in the firewall.
	MSS *MSSPlan `json:"mss,omitempty"`
	// BootID is the kernel boot the plan was made in; Apply stamps it on
	// the record.
	BootID string `json:"-"`
	// StaleRecord says why the revert record was not used: it was written
	// in an earlier boot, whose kernel values are gone. Apply starts a new one.
	StaleRecord string `json:"stale_record,omitempty"`
	// Adopt are values somebody else set that wslmtu takes over as if it had
	// written them: tailscaled's own WSL fix, whose 1360 must not be taken
	// for what Windows chose. Apply records them; nothing is written.
	Adopt map[string]LinkRecord `json:"adopt,omitempty"`
}

// Empty means the host is as it should be.
func (p Plan) Empty() bool {
	return len(p.Actions) == 0 && len(p.Routes) == 0 && len(p.Rules) == 0 && !p.MSS.NeedsChange()
}

// Changes lists every change in the order Apply makes them, in the plan's words.
func (p Plan) Changes() []string {
	var out []string
	for _, step := range p.steps() {
		out = append(out, step.String())
	}
	return out
}

func (p Plan) String() string {
	var b strings.Builder
	for _, c := range p.Changes() {
		fmt.Fprintln(&b, c)
	}
	if p.MSS != nil {
		b.WriteString(p.MSS.String())
	}
	if p.Empty() && p.Refused == "" {
		fmt.Fprintln(&b, "nothing to do")
	}
	for _, w := range p.Warnings {
		fmt.Fprintln(&b, "warning:", w)
	}
	for _, n := range p.Notes {
		fmt.Fprintln(&b, "note:", n)
	}
	if p.Refused != "" {
		fmt.Fprintln(&b, "not applied:", p.Refused)
	}
	return b.String()
}

// NewPlan decides what to change, from the observation and the revert
// record. Targets are computed from the baseline (the host as it would be
// without wslmtu's changes), so a plan never feeds on its own output, and a
// value wslmtu set that the new targets no longer need is put back.
func NewPlan(st detect.State, rec Record, cfg config.Config) Plan {
	p := Plan{Strategy: cfg.MTUStrategy, Chosen: cfg.MTUStrategy}
	if !st.Env.WSL {
		p.Refused = "this is not WSL (" + st.Env.Note + "); use --assume-wsl (or assume_wsl = true) to fix it anyway"
	}
	if st.Env.WSL && st.Env.Version == 1 {
		p.Notes = append(p.Notes, st.Env.Note)
		return p
	}
	p.BootID = st.Env.BootID
	if rec.FromOtherBoot(st.Env.BootID) {
		p.StaleRecord = fmt.Sprintf("the revert record is from an earlier boot (boot id %s, now %s): "+
			"what it held went with that kernel, so it is not used and a new one is started", rec.BootID, st.Env.BootID)
		p.Notes = append(p.Notes, p.StaleRecord)
		rec = newRecord()
	}
	rec = adoptTailscaledFix(&p, st, rec, cfg)
	base := Baseline(st, rec)
	t := planTargets(&p, base, rec, cfg)
	diffLinks(&p, st, rec, t)
	diffPolicy(&p, st, rec, t)
	if t.clamp && !cfg.MSSClamp {
		cfg.MSSClamp = true
	}
	planMSS(&p, st, cfg)
	return p
}

// tailscaled's own WSL fix (fixupWSLMTU in tailscale's
// wgengine/router/osrouter) sets eth0 from exactly 1280 to 1360, for every
// packet, once per tailscaled start.
const (
	tailscaledFixFrom = 1280
	tailscaledFixTo   = 1360
)

// adoptTailscaledFix recognises tailscaled's own WSL fix: eth0 at exactly
// 1360 while tailscaled is present (its interface or its rules) and the
// value is not one wslmtu wrote. Taken for what Windows chose, 1360 would
// leave every packet at 1360 and break a Windows VPN path; so 1280 is the
// baseline, and the record says so, so revert puts 1280 back.
func adoptTailscaledFix(p *Plan, st detect.State, rec Record, cfg config.Config) Record {
	o := st.Outer
	if chosen, _ := chooseStrategy(cfg.MTUStrategy, st.Env.NetworkingMode); chosen == config.StrategyOff {
		return rec // MTUs are left alone, tailscaled's too
	}
	if o == nil || o.Name != "eth0" || o.MTU != tailscaledFixTo || !tailscaledPresent(st) {
		return rec
	}
	if r, known := rec.Links[o.Name]; known && ours(o.MTU, r.Wrote) {
		if r.SetBy != "" {
			p.Notes = append(p.Notes, fmt.Sprintf("%s %d was set by %s's own WSL fix; %d is what Windows chose, and revert puts it back",
				o.Name, r.Wrote, r.SetBy, r.Before))
		}
		return rec
	}
	rec = cloneRecord(rec)
	lr := LinkRecord{Before: tailscaledFixFrom, Wrote: tailscaledFixTo, SetBy: "tailscaled"}
	rec.Links[o.Name] = lr
	p.Adopt = map[string]LinkRecord{o.Name: lr}
	p.Notes = append(p.Notes, fmt.Sprintf("%s %d is tailscaled's own WSL fix (at start it raises eth0 from exactly %d to %d, for every packet): "+
		"%d is taken as what Windows chose, and revert puts it back", o.Name, o.MTU, tailscaledFixFrom, tailscaledFixTo, tailscaledFixFrom))
	return rec
}

func tailscaledPresent(st detect.State) bool {
	for _, l := range st.Links {
		if detect.IsTailscale(l.Name) {
			return true
		}
	}
	return len(detect.TailscaledRules(st.Rules)) > 0
}

// targets are the values the host should hold, from the baseline.
type targets struct {
	mtu    map[string]int    // interface → MTU
	reason map[string]string // interface → why
	// routeMTU is the tunnel scope's route MTUs (route → mtu), policy its
	// rules and table routes; nil when the scope adds nothing.
	routeMTU map[detect.Route]int
	policy   *PolicyRecord
	clamp    bool   // auto chose MSS clamping
	gone     string // why values wslmtu set are no longer needed
	// keep: nothing can be planned now (no tunnel is up, no outer
	// interface), so what wslmtu has in place stays: a tunnel that
	// reconnects comes back within moments, and undoing and redoing
	// everything on each reconnect would only churn.
	keep bool
	// keepPolicy: the outer interface holds no default route for a moment
	// (WSL recreating eth0): the tunnel scope's routes and rules stay.
	keepPolicy bool
}

func planTargets(p *Plan, base detect.State, rec Record, cfg config.Config) targets {
	t := targets{mtu: map[string]int{}, reason: map[string]string{}, gone: "no longer needed"}
	mode := base.Env.NetworkingMode
	for _, name := range base.MissingTunnels {
		p.Notes = append(p.Notes, name+" is not present (tunnel not connected?)")
	}
	for _, d := range base.DownTunnels {
		p.Notes = append(p.Notes, fmt.Sprintf("%s is down (mtu %d): left out until it comes up", d.Name, d.MTU))
	}
	p.Chosen, p.ChosenWhy = chooseStrategy(cfg.MTUStrategy, mode)
	switch {
	case p.Chosen == config.StrategyOff:
		p.Notes = append(p.Notes, "mtu_strategy = off: MTUs are left alone")
		t.gone = "mtu_strategy is off"
		return t
	case base.Outer == nil:
		p.Notes = append(p.Notes, "no outer interface: there is no default route and no eth0")
		t.keep = true
		return t
	case len(base.Tunnels) == 0:
		p.Notes = append(p.Notes, fmt.Sprintf("no tunnel found (%s): nothing to fit", strings.Join(cfg.Tunnels, ", ")))
		if !rec.Empty() {
			p.Notes = append(p.Notes, "what wslmtu changed stays in place until a tunnel is back (`wslmtu revert` removes it)")
		}
		t.keep = true
		return t
	}
	if p.Chosen == config.RaiseOuter {
		if mode == detect.ModeMirrored {
			p.Warnings = append(p.Warnings, fmt.Sprintf("mirrored networking: %s mirrors a Windows adapter of mtu %d; Windows drops larger frames "+
				"without an error (microsoft/WSL#41419), so raising it can break the tunnel and everything else; mtu_strategy = \"auto\" lowers the tunnel instead",
				base.Outer.Name, base.Outer.MTU))
		}
		planRaiseOuter(p, base, cfg, &t)
	} else {
		planLowerTunnel(p, base, cfg, mode, &t)
	}
	return t
}

// chooseStrategy resolves auto per networking mode.
func chooseStrategy(s config.Strategy, mode string) (config.Strategy, string) {
	if s != config.Auto {
		return s, ""
	}
	switch mode {
	case detect.ModeMirrored:
		return config.LowerTunnel, "mirrored networking: each interface mirrors a Windows adapter and Windows drops larger frames, so the tunnel is lowered to fit"
	case detect.ModeNone:
		return config.StrategyOff, "networking mode none: there is no network to fix"
	case detect.ModeNAT, detect.ModeConsomme:
		return config.RaiseOuter, "networking mode " + mode + ": the NAT drops fragments, so the outer interface is raised to carry the tunnel's packets whole"
	}
	return config.RaiseOuter, "networking mode " + orUnknown(mode) + ": treated like NAT, whose fragment drops are the common case"
}

func orUnknown(mode string) string {
	if mode == "" {
		return detect.ModeUnknown
	}
	return mode
}

// planRaiseOuter: outer MTU := the widest need of the tunnels, never
// lowered, capped by max_outer_mtu. With scope tunnel, only the tunnel's
// own packets get the raise.
func planRaiseOuter(p *Plan, base detect.State, cfg config.Config, t *targets) {
	outer := *base.Outer
	need, reason, widest := 0, "", ""
	for _, tun := range base.Tunnels {
		spec := detect.SpecOf(tun)
		if n := spec.Need(tun.MTU); n > need {
			need, reason, widest = n, spec.Reason(tun.Name, tun.MTU), tun.Name
		}
	}
	if need <= outer.MTU {
		t.gone = fmt.Sprintf("%s %d already carries the tunnels", outer.Name, outer.MTU)
		return
	}
	target := need
	if need > cfg.MaxOuterMTU {
		target = cfg.MaxOuterMTU
		hint := "--mss-clamp, or raise max_outer_mtu if Windows carries more"
		if w := base.Link(widest); w != nil {
			if mtu, ok, _ := detect.SpecOf(*w).LargestTunnelMTU(outer.MTU); ok && mtu >= tunnel.MinIPv4MTU {
				hint = fmt.Sprintf("--mtu-strategy lower-tunnel (%s → %d) or %s", widest, mtu, hint)
			}
		}
		p.Warnings = append(p.Warnings, fmt.Sprintf(
			"%s needs %s %d but max_outer_mtu is %d: large packets will still be lost; use %s",
			widest, outer.Name, need, cfg.MaxOuterMTU, hint))
		reason += fmt.Sprintf(", capped at max_outer_mtu %d", cfg.MaxOuterMTU)
	}
	if target <= outer.MTU {
		return
	}
	t.mtu[outer.Name], t.reason[outer.Name] = target, reason
	p.Scope, p.WindowsMTU = cfg.OuterScope, outer.MTU
	if cfg.OuterScope == config.ScopeTunnel {
		scopeToTunnels(p, base, outer, target, t)
	}
}

// scopeToTunnels keeps every packet but the tunnels' own at the MTU Windows
// gave the outer interface: each of its default routes without an MTU of
// its own gets that MTU, and the tunnels' packets (by mark or source port)
// skip the main table's default route for a copy without it in a table of
// ours. A tunnel whose packets cannot be told apart makes the raise apply
// to everything (scope all for this case), with a warning that says how to
// name them.
func scopeToTunnels(p *Plan, base detect.State, outer detect.Link, target int, t *targets) {
	w := outer.MTU
	defaults := base.DefaultRoutes(outer.Index)
	if len(defaults) == 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("%s holds no default route: no other traffic to keep at %d", outer.Name, w))
		t.keepPolicy = true
		return
	}
	var needy []detect.Link
	for _, tun := range base.Tunnels {
		if detect.SpecOf(tun).Need(tun.MTU) > w {
			needy = append(needy, tun)
		}
	}
	var unknown []string
	for _, tun := range needy {
		if !tun.Tunnel.Identified() {
			why := "its packets cannot be told apart"
			if tun.Tunnel != nil && tun.Tunnel.Unidentified != "" {
				why = tun.Tunnel.Unidentified
			}
			unknown = append(unknown, tun.Name)
			p.Warnings = append(p.Warnings, fmt.Sprintf(
				"outer_scope = \"tunnel\" cannot keep other traffic at %d: %s's own packets cannot be recognised (%s); "+
					"%s is raised for all packets (outer_scope \"all\" for this case); name them in a [[tunnel]] table "+
					"(name = %q with fwmark = \"0x…\" or port = N) to keep everything else at what Windows chose",
				w, tun.Name, why, outer.Name, tun.Name))
		}
	}
	if len(unknown) > 0 {
		p.Scope = config.ScopeAll
		return
	}
	names := make([]string, len(needy))
	for i, tun := range needy {
		names[i] = tun.Name
	}
	who := strings.Join(names, " and ") + "'s own packets"
	table, pref1, pref2 := choosePolicy(base)
	pol := &PolicyRecord{Table: table}
	t.routeMTU = map[detect.Route]int{}
	families := map[int]bool{}
	first := map[detect.Route]detect.Route{} // by the kernel's key: one route per key is used
	for _, r := range defaults {
		key := r
		key.MTU = 0
		if r.Family == 4 {
			k := detect.Route{Family: 4, Table: r.Table, Dst: r.Dst, Metric: r.Metric}
			if f, dup := first[k]; dup {
				// `ip route append`: the kernel uses the first of routes
				// with one key, and giving this one an mtu by replace
				// would rewrite the first.
				p.Notes = append(p.Notes, fmt.Sprintf("route %s has the metric of %s, which the kernel uses first: left alone while that one is there", r, f))
				continue
			}
			first[k] = r
		}
		switch {
		case r.Family == 6 && w < tunnel.MinIPv6MTU:
			p.Notes = append(p.Notes, fmt.Sprintf("route %s: IPv6 needs an mtu of at least %d, more than %d: left alone", r, tunnel.MinIPv6MTU, w))
			continue
		case r.MTU != 0 && r.MTU < w:
			t.routeMTU[key] = r.MTU
			p.Notes = append(p.Notes, fmt.Sprintf("route %s has an mtu of its own (%d), below what Windows chose (%d): kept", r, r.MTU, w))
		case r.MTU == w:
			t.routeMTU[key] = w
			p.Notes = append(p.Notes, fmt.Sprintf("route %s already has mtu %d, what Windows chose: kept", r, w))
		default:
			t.routeMTU[key] = w
		}
		copyRoute := r
		copyRoute.Table, copyRoute.MTU = table, 0
		pol.Routes = append(pol.Routes, copyRoute)
		families[r.Family] = true
	}
	for _, family := range []int{4, 6} {
		if !families[family] {
			continue
		}
		for _, tun := range needy {
			sel := selectorRule(tun.Tunnel, family)
			r1, r2 := sel, sel
			r1.Priority, r1.Table, r1.SuppressPrefixlen = pref1, detect.MainTable, 0
			r2.Priority, r2.Table = pref2, table
			pol.Rules = append(pol.Rules, r1, r2)
		}
	}
	t.policy = pol
	t.reason["route"] = fmt.Sprintf("what Windows chose; only %s use %d", who, target)
	t.reason["rule"] = who
}

// selectorRule is the tunnel's selector as a rule of a family.
func selectorRule(info *detect.TunnelInfo, family int) detect.Rule {
	r := detect.Rule{Family: family, SuppressPrefixlen: -1}
	if info.Mask != 0 {
		r.Mark, r.Mask = info.Mark, info.Mask
	} else {
		r.IPProto, r.Sport = 17, info.Port
	}
	return r
}

// Policy numbers: the rules go before tailscaled's (priority 5210 on) and
// the table is one nothing else uses (tailscaled's is 52).
const (
	firstRulePref  = 5190
	secondRulePref = 5200
	tailscaledPref = 5210
	firstTable     = 5200
)

// choosePolicy picks two rule priorities below tailscaled's and a table id,
// all unused in the baseline (which leaves wslmtu's own out), preferring the
// same numbers every time so repeated plans agree.
func choosePolicy(base detect.State) (table, pref1, pref2 int) {
	usedTables := map[int]bool{0: true, 253: true, 254: true, 255: true}
	usedPrefs := map[int]bool{}
	for _, r := range base.Routes {
		usedTables[r.Table] = true
	}
	for _, r := range base.Rules {
		usedTables[r.Table] = true
		usedPrefs[r.Priority] = true
	}
	for _, t := range base.OtherTables {
		usedTables[t] = true
	}
	table = firstTable
	for usedTables[table] {
		table++
	}
	pref1, pref2 = firstRulePref, secondRulePref
	for p := secondRulePref; p > 1; p -= 10 {
		if !usedPrefs[p] && !usedPrefs[p-10] && p < tailscaledPref {
			return table, p - 10, p
		}
	}
	return table, pref1, pref2
}

// planLowerTunnel: each tunnel := the largest MTU that fits the outer
// interface. Below 1280 Linux deletes the tunnel's IPv6 addresses; in
// mirrored mode auto clamps the MSS instead of going there.
func planLowerTunnel(p *Plan, base detect.State, cfg config.Config, mode string, t *targets) {
	outer := *base.Outer
	auto := cfg.MTUStrategy == config.Auto
	t.gone = fmt.Sprintf("the tunnels fit %s %d", outer.Name, outer.MTU)
	for _, tun := range base.Tunnels {
		spec := detect.SpecOf(tun)
		target, ok, why := spec.LargestTunnelMTU(outer.MTU)
		switch {
		case !ok:
			p.Warnings = append(p.Warnings, fmt.Sprintf("cannot lower %s: %s; %s", tun.Name, why, raiseHint(mode, outer)))
			continue
		case tun.MTU <= target:
			continue
		case target < tunnel.MinIPv4MTU:
			p.Warnings = append(p.Warnings, fmt.Sprintf("cannot lower %s to %d: the kernel allows no mtu below %d (%s %d leaves no room for the tunnel); %s",
				tun.Name, target, tunnel.MinIPv4MTU, outer.Name, outer.MTU, raiseHint(mode, outer)))
			continue
		case target < tunnel.MinIPv6MTU && auto:
			t.clamp = true
			p.Warnings = append(p.Warnings, fmt.Sprintf(
				"%s would need mtu %d to fit %s %d, below %d where Linux deletes its IPv6 addresses; clamping the TCP MSS instead: "+
					"UDP (QUIC, large DNS replies) and ICMP through %s still hang above %d bytes",
				tun.Name, target, outer.Name, outer.MTU, tunnel.MinIPv6MTU, tun.Name, target))
			continue
		}
		t.mtu[tun.Name], t.reason[tun.Name] = target, lowerReason(spec, outer)
		if target < tunnel.MinIPv6MTU {
			p.Warnings = append(p.Warnings, fmt.Sprintf(
				"%s below %d loses its IPv6 addresses (Linux requires %d for IPv6) and setting it back does not restore them; "+
					"prefer --mtu-strategy raise-outer", tun.Name, tunnel.MinIPv6MTU, tunnel.MinIPv6MTU))
		}
	}
}

// lowerReason is "eth0 1280 − 80 WireGuard/IPv6 overhead".
func lowerReason(spec tunnel.Spec, outer detect.Link) string {
	if spec.Kind == tunnel.Other {
		return fmt.Sprintf("%s %d − %d overhead (%s)", outer.Name, outer.MTU, spec.Overhead, spec.Source)
	}
	return fmt.Sprintf("%s %d − %d WireGuard/%s overhead", outer.Name, outer.MTU, WireGuardOverhead, tunnel.WorstUnderlay)
}

func raiseHint(mode string, outer detect.Link) string {
	if mode == detect.ModeMirrored {
		return fmt.Sprintf("in mirrored mode only a Windows adapter with a larger mtu than %d helps", outer.MTU)
	}
	return "use mtu_strategy = \"raise-outer\""
}

// diffLinks turns the targets into MTU actions against what the kernel
// holds now: a target that differs is written; a value wslmtu wrote that no
// target needs any more goes back to what it was.
func diffLinks(p *Plan, st detect.State, rec Record, t targets) {
	if t.keep {
		return
	}
	for _, l := range st.Links {
		if want, ok := t.mtu[l.Name]; ok {
			if l.MTU != want {
				p.Actions = append(p.Actions, Action{Link: l.Name, Index: l.Index, From: l.MTU, To: want, Reason: t.reason[l.Name]})
			}
			continue
		}
		r, known := rec.Links[l.Name]
		switch {
		case !known:
		case !ours(l.MTU, r.Wrote) || l.MTU == r.Before:
			p.Forget = append(p.Forget, l.Name)
		default:
			p.Actions = append(p.Actions, Action{Link: l.Name, Index: l.Index, From: l.MTU, To: r.Before,
				Reason: fmt.Sprintf("back to the value before wslmtu changed it: %s", t.gone)})
		}
	}
}

// diffPolicy turns the tunnel scope's wanted routes and rules into actions
// against the routes and rules there now: route MTUs set or put back, our
// table's routes and our rules added or deleted. Nothing that is not ours
// is ever deleted.
func diffPolicy(p *Plan, st detect.State, rec Record, t targets) {
	if t.keep || t.keepPolicy {
		p.Policy = rec.Policy
		return
	}
	routeWhy := t.reason["route"]
	for _, r := range st.Routes {
		key := r
		key.MTU = 0
		if want, ok := t.routeMTU[key]; ok {
			if r.MTU != want {
				p.Routes = append(p.Routes, RouteAction{Op: RouteSetMTU, Route: r, From: r.MTU, To: want, Reason: routeWhy})
			}
			continue
		}
		rr, ok := rec.routeRecord(r)
		switch {
		case !ok:
		case !ours(r.MTU, rr.Wrote) || r.MTU == rr.Before:
			p.ForgetRoutes = append(p.ForgetRoutes, rr.Route)
		default:
			p.Routes = append(p.Routes, RouteAction{Op: RouteSetMTU, Route: r, From: r.MTU, To: rr.Before,
				Reason: "back to the value before wslmtu changed it: " + t.gone})
		}
	}
	var have *PolicyRecord
	if rec.Policy != nil {
		have = rec.Policy
	}
	want := t.policy
	p.Policy = want
	ruleWhy := func(r detect.Rule) string {
		if r.Table == detect.MainTable {
			return t.reason["rule"] + " skip the main table's default route"
		}
		return fmt.Sprintf("%s take the default route without the mtu, in table %d", t.reason["rule"], r.Table)
	}
	if want != nil {
		for _, r := range want.Routes {
			if !containsRouteExact(st.Routes, r) {
				p.Routes = append(p.Routes, RouteAction{Op: RouteAdd, Route: r,
					Reason: fmt.Sprintf("the default route without an mtu, for %s", t.reason["rule"])})
			}
		}
		for _, r := range want.Rules {
			if !containsRule(st.Rules, r) {
				p.Rules = append(p.Rules, RuleAction{Add: true, Rule: r, Reason: ruleWhy(r)})
			}
		}
	}
	if have != nil {
		for _, r := range have.Routes {
			if (want == nil || !containsRouteExact(want.Routes, r)) && containsRoute(st.Routes, r) {
				p.Routes = append(p.Routes, RouteAction{Op: RouteDelete, Route: r, Reason: "wslmtu added it; " + t.gone})
			}
		}
		for _, r := range have.Rules {
			if (want == nil || !containsRule(want.Rules, r)) && containsRule(st.Rules, r) {
				p.Rules = append(p.Rules, RuleAction{Add: false, Rule: r, Reason: "wslmtu added it; " + t.gone})
			}
		}
	}
	if want != nil && len(want.Rules)+len(want.Routes) == 0 {
		p.Policy = nil
	}
	sort.SliceStable(p.Routes, func(i, j int) bool { return routeOrder(p.Routes[i]) < routeOrder(p.Routes[j]) })
}

func routeOrder(a RouteAction) int {
	switch a.Op {
	case RouteAdd:
		return 0
	case RouteSetMTU:
		return 1
	}
	return 2
}

// containsRouteExact finds the same route with the same mtu.
func containsRouteExact(routes []detect.Route, r detect.Route) bool {
	return slices.ContainsFunc(routes, func(have detect.Route) bool { return have.Same(r) && have.MTU == r.MTU })
}

// step is one change in Apply's order.
type step interface{ String() string }

// steps orders the changes so no packet ever sees a raised MTU it should
// not: rules, our table and route MTUs go in before an interface is raised,
// and come out after it is lowered.
//
// Our table's stale routes go out before its new ones go in: a gateway
// change gives the new copy the kernel key of the old one (table, default,
// metric), and adding it first fails with "file exists" on every plan.
func (p Plan) steps() []step {
	var first, links, last []step
	adds := slices.ContainsFunc(p.Routes, func(r RouteAction) bool { return r.Op == RouteAdd })
	for _, r := range p.Routes {
		if r.Op == RouteDelete && adds {
			first = append(first, r)
		}
	}
	for _, r := range p.Rules {
		if r.Add {
			first = append(first, r)
		} else {
			last = append(last, r)
		}
	}
	for _, r := range p.Routes {
		switch {
		case r.Op == RouteDelete && adds:
		case r.Op == RouteAdd, r.Op == RouteSetMTU && r.To != 0:
			first = append(first, r)
		default:
			last = append(last, r)
		}
	}
	for _, a := range p.Actions {
		links = append(links, a)
	}
	return append(append(first, links...), last...)
}
