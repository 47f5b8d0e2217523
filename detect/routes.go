package detect

import (
	"fmt"
	"strings"
)

// Route is one route as the planner needs to see it. Dst is "default" for
// 0.0.0.0/0 and ::/0.
type Route struct {
	Family    int    `json:"family"` // 4 or 6
	Table     int    `json:"table"`
	Dst       string `json:"dst"`
	Gw        string `json:"gateway,omitempty"`
	LinkIndex int    `json:"ifindex,omitempty"`
	Dev       string `json:"dev,omitempty"` // filled from the links when observed
	Metric    int    `json:"metric,omitempty"`
	MTU       int    `json:"mtu,omitempty"` // the route's own mtu; 0 when it has none
}

// MainTable is the kernel's main routing table, where WSL puts the default route.
const MainTable = 254

// IsDefault says whether the route is a default route.
func (r Route) IsDefault() bool { return r.Dst == "default" }

// Same says whether two values are the same route (the same entry in the
// kernel: family, table, destination, gateway, device and metric), whatever
// their MTUs.
func (r Route) Same(o Route) bool {
	return r.Family == o.Family && r.Table == o.Table && r.Dst == o.Dst && r.Gw == o.Gw &&
		r.LinkIndex == o.LinkIndex && r.Metric == o.Metric
}

// String is the route as `ip route` prints it, e.g.
// "default via 172.28.0.1 dev eth0" (plus "table 5200", "metric 100").
func (r Route) String() string {
	var b strings.Builder
	b.WriteString(r.Dst)
	if r.Gw != "" {
		b.WriteString(" via " + r.Gw)
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	} else if r.LinkIndex != 0 {
		fmt.Fprintf(&b, " dev #%d", r.LinkIndex)
	}
	if r.Table != MainTable && r.Table != 0 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	return b.String()
}

// Rule is one policy routing rule (`ip rule`). Only the selectors wslmtu
// uses are modelled; Other flags a rule with selectors it does not model,
// so it is never mistaken for one of ours.
type Rule struct {
	Family   int `json:"family"` // 4 or 6
	Priority int `json:"priority"`
	Table    int `json:"table,omitempty"`
	// Mark and Mask select by firewall mark; Mask 0 means no mark selector.
	Mark uint32 `json:"fwmark,omitempty"`
	Mask uint32 `json:"fwmask,omitempty"`
	// IPProto and Sport select a UDP source port (ipproto udp sport N).
	IPProto int `json:"ipproto,omitempty"`
	Sport   int `json:"sport,omitempty"`
	// SuppressPrefixlen is suppress_prefixlength; -1 when not set.
	SuppressPrefixlen int  `json:"suppress_prefixlength"`
	Other             bool `json:"other,omitempty"`
}

func (r Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d: from all", r.Priority)
	if r.Mask != 0 {
		if r.Mask == 0xffffffff {
			fmt.Fprintf(&b, " fwmark 0x%x", r.Mark)
		} else {
			fmt.Fprintf(&b, " fwmark 0x%x/0x%x", r.Mark, r.Mask)
		}
	}
	if r.IPProto == 17 {
		b.WriteString(" ipproto udp")
	} else if r.IPProto != 0 {
		fmt.Fprintf(&b, " ipproto %d", r.IPProto)
	}
	if r.Sport != 0 {
		fmt.Fprintf(&b, " sport %d", r.Sport)
	}
	switch r.Table {
	case MainTable:
		b.WriteString(" lookup main")
	case 0:
	default:
		fmt.Fprintf(&b, " lookup %d", r.Table)
	}
	if r.SuppressPrefixlen >= 0 {
		fmt.Fprintf(&b, " suppress_prefixlength %d", r.SuppressPrefixlen)
	}
	return b.String()
}

// Tool is the ip command of the rule's family, for messages.
func Tool(family int) string {
	if family == 6 {
		return "ip -6"
	}
	return "ip"
}
