package netwatch

import (
	"context"
	"time"

	"github.com/wslmtu/wslmtu/detect"
)

// Event is one change, stamped when it was read from the kernel: the time
// the agent's repair latency is measured from, even when the agent itself
// was busy and read the event later.
type Event struct {
	At time.Time
	// Link is set for RTM_NEWLINK and RTM_DELLINK (Gone).
	Link *detect.Link
	// Route is set for RTM_NEWROUTE and RTM_DELROUTE (Gone).
	Route *detect.Route
	// Rules is set when a policy rule was added or removed; the event does
	// not say which, so the rules are read again.
	Rules bool
	// Addr is set for RTM_NEWADDR and RTM_DELADDR (Gone). Deleting a link's
	// last IPv4 address flushes every IPv4 route through it, in every table,
	// without an RTM_DELROUTE, so an address event is the only word of it.
	Addr *Addr
	Gone bool
	// Wrote is the MTU the reader wrote back to Link as it read this event
	// (an armed Repairs); WriteErr is the write's failure.
	Wrote    int
	WriteErr error
	// Err is a failed subscription (ENOBUFS under a burst, a closed socket):
	// it is the last event before the channel closes, and everything must be
	// read again after subscribing anew.
	Err error
}

// Addr is one interface address as an event reports it.
type Addr struct {
	LinkIndex int
	Family    int    // 4 or 6
	Prefix    string // e.g. "172.28.5.2/20"
}

// Dumper reads the kernel's routes and addresses one at a time, so a
// reader keeps only what it acts on: a host may hold 100k routes in tables
// that do not concern it.
type Dumper interface {
	// Routes calls fn for every unicast route of table (0: every table),
	// IPv4 and IPv6.
	Routes(table int, fn func(detect.Route)) error
	// Addrs calls fn for every IPv4 and IPv6 address.
	Addrs(fn func(Addr)) error
}

// Source delivers the kernel's changes.
type Source interface {
	// Subscribe delivers changes until ctx is done or the subscription
	// fails; then the channel is closed (after an Event carrying the error,
	// when it failed).
	Subscribe(ctx context.Context) (<-chan Event, error)
}
