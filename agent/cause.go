package agent

import (
	"fmt"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
)

// causeKind is the kind of event a reconcile serves.
type causeKind uint8

const (
	causeStart        causeKind = iota // the agent started
	causeLinkAppeared                  // link, with its mtu
	causeLinkRemoved                   // link
	causeLinkDown                      // link
	causeLinkUp                        // link
	causeMTU                           // link's mtu changed to mtu
	causeRouteChanged                  // route
	causeRouteRemoved                  // route
	causeAddrLost                      // link (or the index, unknown) lost prefix
	causeAddrGot                       // link got prefix
	causeRules                         // the policy rules changed
	causeRetry                         // a fight's limiter allows the held repairs
	causeResync                        // a resync was asked for (SIGHUP)
	causeResubscribed                  // the netlink subscription was made again
	causeReload                        // the config file changed
)

// cause is why a reconcile runs: the kind of event, what it concerns, and
// when the kernel reported it.
type cause struct {
	at   time.Time
	kind causeKind
	// link is the interface a link's or an address's event is about; ""
	// for an address of a link the model does not know, then index.
	link  string
	index int
	mtu   int
	route detect.Route // causeRouteChanged, causeRouteRemoved (Dev filled in)
	addr  string       // the address's prefix
}

// concerns says whether the event is about what ch touched: its
// interface, or for a route's or rule's change any route.
func (c cause) concerns(ch fix.Change) bool {
	switch c.kind {
	case causeRouteChanged, causeRouteRemoved:
		return ch.Link == ""
	case causeLinkAppeared, causeLinkRemoved, causeLinkDown, causeLinkUp, causeMTU, causeAddrLost, causeAddrGot:
		return ch.Link != "" && c.link == ch.Link
	}
	return false
}

// String is the cause as the log and the status file say it.
func (c cause) String() string {
	switch c.kind {
	case causeStart:
		return "start"
	case causeLinkAppeared:
		return fmt.Sprintf("%s appeared (mtu %d)", c.link, c.mtu)
	case causeLinkRemoved:
		return c.link + " removed"
	case causeLinkDown:
		return c.link + " went down"
	case causeLinkUp:
		return c.link + " came up"
	case causeMTU:
		return fmt.Sprintf("%s mtu is %d", c.link, c.mtu)
	case causeRouteChanged:
		return "route " + c.route.String() + " changed"
	case causeRouteRemoved:
		return "route " + c.route.String() + " removed"
	case causeAddrLost:
		return c.linkName() + " lost address " + c.addr
	case causeAddrGot:
		return c.linkName() + " got address " + c.addr
	case causeRules:
		return "policy rules changed"
	case causeRetry:
		return "rate-limited repair"
	case causeResync:
		return "resync requested"
	case causeResubscribed:
		return "resync after a netlink error"
	case causeReload:
		return "config reloaded"
	}
	return fmt.Sprintf("cause(%d)", c.kind)
}

func (c cause) linkName() string {
	if c.link == "" {
		return fmt.Sprintf("#%d", c.index)
	}
	return c.link
}

// causeOf is the first event about what a change touched (its interface,
// or a route), else the first event served: the log says why, and the
// latency runs from that event to the write.
func causeOf(causes []cause, ch fix.Change) cause {
	for _, c := range causes {
		if c.concerns(ch) {
			return c
		}
	}
	return causes[0]
}
