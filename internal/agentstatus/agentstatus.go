package agentstatus

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/proc"
	"github.com/wslmtu/wslmtu/internal/statefile"
)

// Repair is one write that undid somebody else's change: an interface's
// MTU (Interface, From, To) or a route or rule (Change, in the plan's
// words; Interface is then "route" or "rule").
type Repair struct {
	Time      time.Time     `json:"time"`
	Interface string        `json:"interface"`
	From      int           `json:"from"`
	To        int           `json:"to"`
	Change    string        `json:"change,omitempty"`
	Cause     string        `json:"cause"`
	Latency   time.Duration `json:"latency_ns"`
}

func (r Repair) String() string {
	what := fmt.Sprintf("%s: mtu %d → %d", r.Interface, r.From, r.To)
	switch {
	case r.Change != "":
		what = r.Change
	case r.To == 0:
		// Written by an older agent, which kept a route's or rule's change
		// in Interface: no MTU is ever set to 0.
		what = r.Interface
	}
	return fmt.Sprintf("%s after %s, in %s (%s)", what, r.Cause,
		r.Latency.Round(time.Microsecond), r.Time.Local().Format(time.DateTime))
}

// Counters is what `wslmtu status` shows about the agent.
type Counters struct {
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	Reconciles int       `json:"reconciles"`
	Repairs    int       `json:"repairs"`
	// RepairsBy counts repairs per interface (and "route …" / "rule …" for
	// the tunnel scope's parts), for the metrics.
	RepairsBy   map[string]int `json:"repairs_by,omitempty"`
	LastRepair  *Repair        `json:"last_repair,omitempty"`
	Fights      int            `json:"fights"` // times something kept undoing a repair
	Resubscribe int            `json:"resubscribes"`
	Config      string         `json:"config"`
	Stopped     time.Time      `json:"stopped,omitzero"`

	// Fighting are the fights standing now: what something keeps undoing
	// ("eth0 mtu", "route default via … dev eth0", "ip rule 5200: …").
	Fighting []string `json:"fighting,omitempty"`
	// Warnings are the plan's warnings standing now, as the agent logged them.
	Warnings []string `json:"warnings,omitempty"`
	// Paths are the last checks of the verify hosts' paths.
	Paths []fix.PathCheck `json:"paths,omitempty"`
}

// FileName is the status file in the agent's state directory.
const FileName = "agent.json"

// Write replaces the status file in dir. Unsynced: it is rewritten often
// and a lost copy only loses counters.
func Write(dir string, c Counters) error {
	return statefile.WriteJSONUnsynced(filepath.Join(dir, FileName), c)
}

// Status is the agent as seen from another process.
type Status struct {
	Counters
	Running bool `json:"running"`
	Known   bool `json:"known"` // an agent has run with this state directory
}

// Read reads the status file of stateDir and checks that its process still
// lives.
func Read(stateDir string) (Status, error) {
	var s Status
	found, err := statefile.ReadJSON(filepath.Join(stateDir, FileName), &s.Counters)
	if err != nil || !found {
		return s, err
	}
	s.Known = true
	s.Running = s.Stopped.IsZero() && proc.IsAgent(s.PID)
	return s, nil
}

func (s Status) String() string {
	if !s.Known {
		return "agent: never ran (install it: sudo ./install.sh, or run `wslmtu run`)"
	}
	var b strings.Builder
	switch {
	case s.Running:
		fmt.Fprintf(&b, "agent: running (pid %d, since %s)\n", s.PID, s.Started.Local().Format(time.DateTime))
	case !s.Stopped.IsZero():
		fmt.Fprintf(&b, "agent: stopped at %s\n", s.Stopped.Local().Format(time.DateTime))
	default:
		fmt.Fprintf(&b, "agent: not running (pid %d is gone; it was not stopped cleanly)\n", s.PID)
	}
	fmt.Fprintf(&b, "  repairs: %d, fights: %d, netlink resubscribes: %d\n", s.Repairs, s.Fights, s.Resubscribe)
	if s.LastRepair != nil {
		fmt.Fprintf(&b, "  last repair: %s\n", s.LastRepair)
	}
	for _, p := range s.Paths {
		fmt.Fprintf(&b, "  path %s (checked %s)\n", p, p.Checked.Local().Format(time.DateTime))
		if !p.OK() && p.Evidence != "" {
			fmt.Fprintf(&b, "    %s\n", p.Evidence)
		}
	}
	if s.Running {
		for _, f := range s.Fighting {
			fmt.Fprintf(&b, "  fighting over %s: something keeps undoing it; repairs are rate-limited\n", f)
		}
		for _, w := range s.Warnings {
			fmt.Fprintf(&b, "  the agent warns: %s\n", w)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
