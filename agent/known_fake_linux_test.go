package agent

import (
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// serve reads the queued events without planning: a write made here was
// made as the event was read, before any plan.
func (s *stepped) serve() []string {
	s.t.Helper()
	if !s.a.drain(s.events) {
		s.t.Fatal("the subscription ended")
	}
	return s.k.Writes()
}

// mtuWrites are the writes of one link's MTU.
func mtuWrites(writes []string, link string) []string {
	return slices.DeleteFunc(slices.Clone(writes), func(w string) bool { return !strings.HasPrefix(w, link+" mtu ") })
}

// A reset to the value a plan repaired is written back as the event is
// read, with the planner's value; the plan that follows finds nothing to
// do, and the record (which holds this repair already) is not saved again.
func TestSteppedKnownResetIsRepairedBeforeThePlan(t *testing.T) {
	s := startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default())
	s.k.Writes()
	stamp := stampOf(s.a.Host.Store.RecordPath())
	repairs := s.a.counters.Repairs
	for i := 0; i < 3; i++ {
		s.k.Reset("eth0", 1280)
		if got := s.serve(); !slices.Equal(got, []string{"eth0 mtu 1360"}) {
			t.Fatalf("reset %d: reading the event wrote %q, want the planner's eth0 mtu 1360", i+1, got)
		}
		s.a.settle()
		if got := s.k.Writes(); len(got) != 0 {
			t.Fatalf("reset %d: the plan after the repair wrote %q, want nothing", i+1, got)
		}
		s.step(time.Second) // the echo
	}
	if s.a.knownRepairs != 3 || s.a.counters.Repairs != repairs+3 {
		t.Errorf("known repairs %d, repairs counted %d, want 3 and %d", s.a.knownRepairs, s.a.counters.Repairs, repairs+3)
	}
	if n := s.lines("msg=repaired", "interface=eth0", "from=1280", "to=1360", `cause="eth0 mtu is 1280"`); n != 3 {
		t.Errorf("%d repairs logged, want 3", n)
	}
	if got := stampOf(s.a.Host.Store.RecordPath()); got != stamp {
		t.Errorf("the revert record was rewritten by repairs of a known value")
	}
}

// A value no plan repaired before (Windows chose anew) waits for the plan,
// which records it; the same reset after that is known.
func TestSteppedNewValueWaitsForThePlan(t *testing.T) {
	s := startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default())
	s.k.Writes()
	s.k.Reset("eth0", 1300)
	if got := s.serve(); len(got) != 0 {
		t.Fatalf("eth0 at a new value 1300: reading the event wrote %q before any plan", got)
	}
	s.a.settle()
	if got := mtuWrites(s.k.Writes(), "eth0"); !slices.Equal(got, []string{"eth0 mtu 1360"}) {
		t.Fatalf("the plan wrote %q, want eth0 mtu 1360", got)
	}
	if r := s.a.record.rec.Links["eth0"]; r.Before != 1300 {
		t.Errorf("record %+v, want before 1300", r)
	}
	s.step(time.Second)
	s.k.Reset("eth0", 1300)
	if got := s.serve(); !slices.Equal(got, []string{"eth0 mtu 1360"}) {
		t.Fatalf("the same reset again wrote %q as it was read, want eth0 mtu 1360", got)
	}
	if s.a.knownRepairs != 1 {
		t.Errorf("known repairs %d, want 1", s.a.knownRepairs)
	}
}

// When the plan's target changes (the tunnel's MTU rose), a reset is put
// back to the new target, never to the one known before: exactly one
// write of eth0, with the planner's value.
func TestSteppedKnownRepairFollowsThePlan(t *testing.T) {
	s := startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default())
	s.k.Writes()
	s.k.Reset("tailscale0", 1400)
	s.step(time.Second)
	if got := mtuWrites(s.k.Writes(), "eth0"); !slices.Equal(got, []string{"eth0 mtu 1480"}) {
		t.Fatalf("tailscale0 1400: eth0 writes %q, want eth0 mtu 1480", got)
	}
	s.step(time.Second)
	for i := 0; i < 2; i++ {
		s.k.Reset("eth0", 1280)
		s.step(time.Second)
		if got := mtuWrites(s.k.Writes(), "eth0"); !slices.Equal(got, []string{"eth0 mtu 1480"}) {
			t.Fatalf("reset %d after the tunnel's change: eth0 writes %q, want exactly eth0 mtu 1480", i+1, got)
		}
		s.step(time.Second)
	}
	// And back: the config turns the fix off; a reset is not "repaired".
	s.a.cfg.MTUStrategy = config.StrategyOff
	clear(s.a.known) // as reloadConfig does
	s.a.queue(cause{at: time.Now(), kind: causeReload})
	s.step(time.Second)
	s.k.Writes()
	s.step(time.Second)
	s.k.Reset("eth0", 1300)
	s.step(time.Second)
	if got := mtuWrites(s.k.Writes(), "eth0"); len(got) != 0 {
		t.Errorf("with the fix off, a reset was written back: %q", got)
	}
}

// A plan that puts another link back keeps the known repairs of the rest:
// with two tunnels lowered, a new value on one is planned, and the other's
// known reset is still written back as it is read.
func TestSteppedKnownRepairsOutliveAnotherLinksPlan(t *testing.T) {
	k := fakekernel.NewWSL(1400, 1420)
	k.AddLink(detect.Link{Name: "wg0", MTU: 1420, Kind: "wireguard", Up: true})
	cfg := config.Default()
	cfg.MTUStrategy = config.LowerTunnel
	s := startStepped(t, k, cfg)
	if a, b := k.MTU("tailscale0"), k.MTU("wg0"); a != 1320 || b != 1320 {
		t.Fatalf("lower-tunnel left tailscale0 at %d, wg0 at %d; want both 1320", a, b)
	}
	s.k.Writes()
	s.k.Reset("wg0", 1400) // a value no plan saw: the plan puts it back
	s.step(time.Second)
	if got := mtuWrites(s.k.Writes(), "wg0"); !slices.Equal(got, []string{"wg0 mtu 1320"}) {
		t.Fatalf("wg0 at a new value: writes %q, want wg0 mtu 1320", got)
	}
	s.step(time.Second)
	s.k.Reset("tailscale0", 1420)
	if got := s.serve(); !slices.Equal(got, []string{"tailscale0 mtu 1320"}) {
		t.Errorf("tailscale0's known reset after wg0's plan: reading the event wrote %q, want tailscale0 mtu 1320", got)
	}
}

// A known reset of a thing fought over lately is written back as it is
// read while its limiter holds a whole token, the last one included.
func TestSteppedKnownRepairTakesTheLastToken(t *testing.T) {
	s := startStepped(t, fakekernel.NewWSL(1280, 1280), config.Default())
	s.k.Writes()
	f := s.a.fights[linkKey("eth0")]
	if f == nil {
		t.Fatal("no limiter for eth0 after the start's repair")
	}
	f.limiter = rate.NewLimiter(rate.Limit(repairsPerSecond), repairBurst)
	f.limiter.AllowN(s.clock, repairBurst-1)
	s.k.Reset("eth0", 1280)
	if got := s.serve(); !slices.Equal(got, []string{"eth0 mtu 1360"}) {
		t.Errorf("with one token left, reading the reset wrote %q, want eth0 mtu 1360", got)
	}
}
