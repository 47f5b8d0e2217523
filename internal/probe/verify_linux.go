package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wslmtu/wslmtu/fix"
)

// PathResult is one host's path check (fix's words: status, health and
// the metrics read it without probing).
type PathResult = fix.PathCheck

// Verify checks the path to each host under r, a fresh read of the host
// (fix.Host.Plan): the kernel's route to the host says which interface it
// takes, fix.PathNeedOf the size that must cross, and DF echoes of exactly
// that size (and, when they do not come back, the search for the largest
// that does) what crosses. It is the one check `wslmtu verify`, doctor and
// the agent make. Sockets and the route lookup are made in the calling
// thread's network namespace. A host that cannot be checked (no name, no
// route, no socket) gets PathError with the reason; nothing else fails.
func Verify(ctx context.Context, hosts []string, r fix.Report, cfg Config) []PathResult {
	out := make([]PathResult, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, verifyOne(ctx, h, r, cfg))
	}
	return out
}

// exactCopies of the needed size go out at once: one lost echo must not
// read as a broken path.
const exactCopies = 3

func verifyOne(ctx context.Context, host string, r fix.Report, cfg Config) PathResult {
	res := PathResult{PathNeed: fix.PathNeed{Host: host}, Largest: -1, Checked: time.Now()}
	fail := func(err error) PathResult {
		res.Verdict, res.Evidence = fix.PathError, err.Error()
		return res
	}
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	rctx, cancel := context.WithTimeout(ctx, timeout)
	addr, err := resolve(rctx, host, 0)
	cancel()
	if err != nil {
		return fail(err)
	}
	t, index, err := routeTo(host, addr)
	if err != nil {
		return fail(err)
	}
	need := fix.PathNeedOf(r.State, r.Plan, fix.PathRoute{Host: host, Addr: addr, LinkIndex: index,
		Interface: t.Interface, InterfaceMTU: t.InterfaceMTU, RouteMTU: t.RouteMTU})
	res.PathNeed = need
	payload := need.Size - t.headers()
	if payload < 0 {
		return fail(fmt.Errorf("%s: %d bytes cannot carry the IP and ICMP headers", host, need.Size))
	}
	c, err := Dial(addr)
	if err != nil {
		return fail(err)
	}
	defer c.Close()

	// A small echo first in the same burst: it fills the neighbour cache
	// and tells a silent host from a broken path.
	hello, exact := Probe{Size: 0, DF: true}, Probe{Size: payload, DF: true}
	rctx, cancel = context.WithTimeout(ctx, timeout)
	rep, err := c.Send(rctx, []Probe{hello, exact}, exactCopies)
	cancel()
	if err != nil {
		return fail(err)
	}
	pr := fix.PathProbe{Answered: rep.Got[hello] || rep.Got[exact], Largest: -1}
	if rep.Got[exact] {
		pr.Crossed, pr.Largest = true, need.Size
	} else if pr.Answered {
		// The largest that crosses, at most the needed size: the evidence
		// of where the path breaks.
		st := t
		st.RouteMTU = need.Size
		tunnelTarget(&st, r.State, index)
		sr, err := Search(ctx, c, st, cfg)
		if err != nil {
			return fail(err)
		}
		pr.Answered = sr.Answered
		if sr.MaxDFPayload >= 0 {
			pr.Largest = sr.MaxDFPacket
		}
		if pr.Largest >= need.Size { // a late echo of the exact size
			pr.Crossed = true
		}
	}
	res.Largest = pr.Largest
	res.Verdict, res.Side, res.Evidence = fix.JudgePath(r.State, r.Plan, need, pr)
	if rep.TooBig[exact] {
		res.Evidence += fmt.Sprintf("; the kernel itself refuses %d-byte DF packets to %s (a learned path MTU)", need.Size, addr)
	}
	return res
}

// ErrPathBroken is wrapped by VerifyError when a path was found broken.
var ErrPathBroken = errors.New("a path is broken")

// VerifyError sums up results that are not all ok, nil when they are.
func VerifyError(results []PathResult) error {
	var bad []string
	for _, p := range results {
		if !p.OK() {
			bad = append(bad, p.Host+" "+string(p.Verdict))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrPathBroken, strings.Join(bad, ", "))
}
