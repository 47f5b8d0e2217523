package agent

import (
	"time"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
)

// newRepair is the repair ch made at done for the event c.
func newRepair(ch fix.Change, c cause, done time.Time) agentstatus.Repair {
	r := agentstatus.Repair{Time: done, Interface: repairKey(ch), Cause: c.String(), Latency: done.Sub(c.at)}
	if ch.Link != "" {
		r.From, r.To = ch.Found, ch.To
	} else {
		r.Change = ch.String()
	}
	return r
}
