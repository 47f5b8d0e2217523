package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// Probe is one kind of echo request: an ICMP payload size and whether the
// packet carries DF (IPv4 don't-fragment; IPv6 IPV6_DONTFRAG).
type Probe struct {
	Size int
	DF   bool
}

// Replies is what came back from one Send. Got may also hold probes of
// earlier Sends whose replies arrived late: a late reply is still proof that
// the path carried that size.
type Replies struct {
	Got map[Probe]bool
	// TooBig holds probes the local kernel refused to send (EMSGSIZE): the
	// route or a learned path MTU is below that size. Those are a limit, not loss.
	TooBig map[Probe]bool
}

// Path sends echo requests to one host.
type Path interface {
	// Send sends copies echo requests for every probe, all at once (a copy
	// of each probe before the next copy of any, so a burst loss does not take
	// every copy of one size), and returns when every probe has come back at
	// least once or ctx is done. An error means the path could not be probed
	// at all; lost replies and EMSGSIZE are not errors.
	Send(ctx context.Context, probes []Probe, copies int) (Replies, error)
}

// Target describes the host and the route towards it.
type Target struct {
	Host         string     // as the user wrote it
	Addr         netip.Addr // resolved address
	Interface    string     // outgoing interface of the route
	Tunnel       bool       // the interface is a tunnel by the config's patterns (or a kernel WireGuard device)
	InterfaceMTU int
	RouteMTU     int // mtu metric of the route or a learned path MTU; 0 if none

	// When Tunnel: the tunnel's kind, and the interface beneath it with its
	// MTU (0 when not known), so a measured limit can be explained.
	Spec     tunnel.Spec
	Outer    string
	OuterMTU int
}

// IPv6 tells whether the target is probed over IPv6.
func (t Target) IPv6() bool { return t.Addr.Is6() && !t.Addr.Is4In6() }

// icmpEchoHeader is the ICMP (and ICMPv6) echo header: type, code, checksum,
// identifier, sequence number.
const icmpEchoHeader = 8

func (t Target) family() tunnel.Underlay {
	if t.IPv6() {
		return tunnel.IPv6
	}
	return tunnel.IPv4
}

// headers is the IP header plus the ICMP echo header.
func (t Target) headers() int { return t.family().Header() + icmpEchoHeader }

// maxPacket is the largest packet IP can express: the IPv4 total length is
// 16 bits, and so is the IPv6 payload length (which excludes its header).
func (t Target) maxPacket() int {
	if t.IPv6() {
		return 65535 + tunnel.IPv6Header
	}
	return 65535
}

// limitMTU is the largest packet the kernel will send to the target.
func (t Target) limitMTU() int {
	limit := min(t.InterfaceMTU, t.maxPacket())
	if t.RouteMTU > 0 && t.RouteMTU < limit {
		return t.RouteMTU
	}
	return limit
}

// Config tunes the search. Zero values take the defaults.
type Config struct {
	Timeout   time.Duration // per round; default 1s
	MaxRounds int           // default 4; a clean path needs 1, a limited one 2
	// Progress, when set, gets a line if the probe takes longer than a moment.
	Progress io.Writer
}

const (
	// DefaultTimeout is how long a round waits for replies.
	DefaultTimeout = time.Second
	// MinTimeout and MaxTimeout bound Config.Timeout: a round shorter than
	// a slow round trip calls a live host dead, and a probe is up to five
	// rounds, so a longer one only makes a person wait for a dead host.
	MinTimeout    = 10 * time.Millisecond
	MaxTimeout    = 30 * time.Second
	defaultRounds = 4
	// maxBatch caps the sizes in one round; a 1500 MTU gives a step of 16.
	maxBatch = 96
)

// CheckTimeout rejects a round timeout outside MinTimeout..MaxTimeout; the
// error wraps ErrBadTimeout and names the value.
func CheckTimeout(d time.Duration) error {
	if d < MinTimeout || d > MaxTimeout {
		return fmt.Errorf("%w %s: a round waits from %s to %s", ErrBadTimeout, d, MinTimeout, MaxTimeout)
	}
	return nil
}

// CheckAddr rejects an address that names no single host whose path could be
// measured; the error wraps ErrBadHost and names the address (and host, when
// the address came from a name). The broadcast address of a subnet takes the
// route, so Run checks that one on the route it finds.
func CheckAddr(host string, a netip.Addr) error {
	a = a.Unmap()
	what := ""
	switch {
	case !a.IsValid():
		what = "not an IP address"
	case a.IsUnspecified():
		what = "the unspecified address: it names no host"
	case a.IsMulticast():
		what = "a multicast address: a probe measures the path to one host"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		what = "the broadcast address: a probe measures the path to one host"
	case a.Is4() && a.As4()[0] == 0:
		what = `in 0.0.0.0/8, "this network" (RFC 1122): it names no host`
	case a.Is6() && a.IsLinkLocalUnicast() && a.Zone() == "":
		what = fmt.Sprintf("link-local without a zone: name the interface, e.g. %s%%eth0", a)
	default:
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "" {
		return fmt.Errorf("%w: %s resolves to %s, %s", ErrBadHost, host, a, what)
	}
	return fmt.Errorf("%w: %s is %s", ErrBadHost, cmp.Or(host, a.String()), what)
}

// progressAfter is "more than a moment"; a variable so tests need not wait.
var progressAfter = 500 * time.Millisecond

// Verdict is the one-word outcome of a probe.
type Verdict string

const (
	// VerdictOK: DF packets up to the MTU the kernel uses cross.
	VerdictOK Verdict = "ok"
	// VerdictFragmentsDropped: a tunnel's outer packets get fragmented and the
	// fragments are dropped (the WSL2 NAT fragment bug).
	VerdictFragmentsDropped Verdict = "fragments-dropped"
	// VerdictBlackHole: packets over some size are lost without an ICMP
	// "too big", although fragments are not the (only) cause.
	VerdictBlackHole Verdict = "black-hole"
	// VerdictNoAnswer: the host answered no echo at all.
	VerdictNoAnswer Verdict = "no-answer"
)

// Problem tells whether the verdict is a fault of the path (not of the
// measurement).
func (v Verdict) Problem() bool { return v == VerdictFragmentsDropped || v == VerdictBlackHole }

// Result is the measured path, printable as text (String) or JSON.
type Result struct {
	Host         string `json:"host"`
	Address      string `json:"address"`
	Family       string `json:"family"` // "ipv4" or "ipv6"
	Interface    string `json:"interface"`
	Tunnel       bool   `json:"tunnel"`
	InterfaceMTU int    `json:"interface_mtu"`
	RouteMTU     int    `json:"route_mtu,omitempty"`

	Answered bool `json:"answered"`
	// MaxDFPayload is the largest ICMP payload that came back with DF set;
	// -1 when none did. MaxDFPacket is the IP packet it made.
	MaxDFPayload int `json:"max_df_payload"`
	MaxDFPacket  int `json:"max_df_packet"`
	// Exact is false when the rounds ran out before the limit was pinned to
	// the byte; then the limit lies between MaxDFPayload and MaxDFPayload+Step.
	Exact bool `json:"exact"`
	// LocalLimitPacket is the packet size over which the kernel refused to
	// send with DF (EMSGSIZE); 0 if it never did.
	LocalLimitPacket int `json:"local_limit_packet,omitempty"`

	// TunnelKind and Outer (with its MTU) are what LimitWhy was worked out
	// from, when the route goes through a tunnel.
	TunnelKind tunnel.Kind `json:"tunnel_kind,omitempty"`
	Outer      string      `json:"outer,omitempty"`
	OuterMTU   int         `json:"outer_mtu,omitempty"`
	// LimitWhy is the tunnel arithmetic that predicts MaxDFPacket, e.g.
	// "1216 = floor16(1280 − 60): WireGuard over an IPv4 underlay on eth0
	// (MTU 1280)"; empty when the path carries the full MTU or nothing predicts it.
	LimitWhy string `json:"limit_why,omitempty"`

	// FragmentPayload is the size of the non-DF echo fragmented locally; 0
	// when the interface needs no fragments (loopback) and none was tested.
	FragmentPayload int  `json:"fragment_payload"`
	FragmentsPassed bool `json:"fragments_passed"`

	Verdict Verdict       `json:"verdict"`
	Message string        `json:"message"`
	Rounds  int           `json:"rounds"` // rounds of many sizes, after the first lone echo
	Elapsed time.Duration `json:"elapsed_ns"`
	Timeout time.Duration `json:"timeout_ns"`
}

// String renders the result for a person.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host        %s (%s, %s)\n", r.Host, r.Address, strings.ToUpper(r.Family[:2])+r.Family[2:])
	kind := ""
	if r.Tunnel {
		kind = " (tunnel)"
	}
	fmt.Fprintf(&b, "route       via %s%s, interface MTU %d", r.Interface, kind, r.InterfaceMTU)
	if r.RouteMTU > 0 {
		fmt.Fprintf(&b, ", route MTU %d", r.RouteMTU)
	}
	b.WriteString("\n")
	if r.Answered {
		switch {
		case r.MaxDFPayload < 0:
			b.WriteString("largest DF  none came back\n")
		default:
			approx := ""
			if !r.Exact {
				approx = " (at least; rounds ran out)"
			}
			fmt.Fprintf(&b, "largest DF  payload %d bytes = %d-byte packet%s\n", r.MaxDFPayload, r.MaxDFPacket, approx)
		}
		if r.LimitWhy != "" {
			fmt.Fprintf(&b, "explained   %s\n", r.LimitWhy)
		}
		if r.LocalLimitPacket > 0 {
			fmt.Fprintf(&b, "local limit the kernel refuses DF packets over %d bytes (route or learned path MTU)\n", r.LocalLimitPacket)
		}
		switch {
		case r.FragmentPayload == 0:
			b.WriteString("fragments   not tested (the interface carries the largest IP packet)\n")
		case r.FragmentsPassed:
			fmt.Fprintf(&b, "fragments   get through (%d-byte echo without DF, fragmented locally)\n", r.FragmentPayload)
		default:
			fmt.Fprintf(&b, "fragments   lost (%d-byte echo without DF, fragmented locally)\n", r.FragmentPayload)
		}
	}
	fmt.Fprintf(&b, "verdict     %s\n", r.Message)
	return b.String()
}

// fragmentPayload is a non-DF echo that the kernel must fragment locally:
// larger than the interface carries in one packet. 0 when the interface
// carries the largest IP packet there is (loopback), so nothing fragments.
func fragmentPayload(t Target) int {
	size := max(2000, t.InterfaceMTU-t.headers()+256)
	if size+t.headers() > t.maxPacket() {
		return 0
	}
	return size
}

// grid returns sizes strictly between lo and hi, at most maxBatch of them,
// always including hi-1 so a path that carries everything is seen in one round.
func grid(lo, hi int) []int {
	n := hi - lo - 1
	if n <= 0 {
		return nil
	}
	step := (n + maxBatch - 1) / maxBatch
	var sizes []int
	for s := lo + 1; s < hi; s += step {
		sizes = append(sizes, s)
	}
	if sizes[len(sizes)-1] != hi-1 {
		sizes = append(sizes, hi-1)
	}
	return sizes
}

// Search measures the path to t through p. It returns an error only when the
// path could not be probed at all (a socket error, ctx cancelled); a host that
// does not answer is a Result with VerdictNoAnswer.
func Search(ctx context.Context, p Path, t Target, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	maxPayload := t.limitMTU() - t.headers()
	if maxPayload < 0 {
		return nil, fmt.Errorf("probe %s: MTU %d of %s is smaller than the %d bytes of IP and ICMP headers", t.Host, t.limitMTU(), t.Interface, t.headers())
	}
	start := time.Now()
	defer announce(cfg.Progress, t)()

	s := newPathSearch(p, t, cfg, maxPayload)
	if err := s.hello(ctx); err != nil {
		return nil, fmt.Errorf("probe %s: %w", t.Host, err)
	}
	if err := s.narrowDown(ctx); err != nil {
		return nil, fmt.Errorf("probe %s: %w", t.Host, err)
	}
	res := s.result(time.Since(start))
	judge(res, t)
	return res, nil
}

// withDefaults fills in the zero values.
func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxRounds <= 0 {
		c.MaxRounds = defaultRounds
	}
	return c
}

// announce writes what is being probed to w once the search has taken
// progressAfter, so a quick probe prints nothing; stop cancels it.
func announce(w io.Writer, t Target) (stop func()) {
	if w == nil {
		return func() {}
	}
	msg := fmt.Sprintf("probing %s (%s) via %s…\n", t.Host, t.Addr, t.Interface)
	timer := time.AfterFunc(progressAfter, func() { io.WriteString(w, msg) })
	return func() { timer.Stop() }
}

// pathSearch is one Search under way: what it has learned of each DF
// payload size, and the bounds on the largest one the path carries.
type pathSearch struct {
	p          Path
	t          Target
	cfg        Config
	maxPayload int   // the largest payload the kernel would send
	frag       Probe // the non-DF echo the kernel fragments; Size 0: none

	got        map[int]bool // DF sizes that came back
	tooBig     map[int]bool // DF sizes the kernel refused
	sentRounds map[int]int  // rounds each DF size was sent in
	fragBack   bool
	rounds     int // rounds of many sizes sent

	// good is the largest size that came back (-1: none), bad the smallest
	// above it lost or refused (maxPayload+1: none).
	good, bad int
}

func newPathSearch(p Path, t Target, cfg Config, maxPayload int) *pathSearch {
	return &pathSearch{
		p: p, t: t, cfg: cfg, maxPayload: maxPayload,
		frag:       Probe{Size: fragmentPayload(t), DF: false},
		got:        map[int]bool{},
		tooBig:     map[int]bool{},
		sentRounds: map[int]int{},
		good:       -1, bad: maxPayload + 1,
	}
}

// hello sends a lone small echo first: it costs one round trip on a live
// path, fills the neighbour cache (whose queue would drop most of a burst
// sent to an unresolved neighbour), and tells a silent host within one
// timeout.
func (s *pathSearch) hello(ctx context.Context) error {
	hello := Probe{Size: 0, DF: true}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	rep, err := s.p.Send(rctx, []Probe{hello}, 3)
	cancel()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	if rep.Got[hello] {
		s.good = 0
		s.got[0] = true
	}
	return nil
}

// narrowDown sends rounds of sizes between good and bad until the limit is
// pinned to the byte, nothing answers, or the rounds run out. A host that
// did not answer the hello gets no rounds.
func (s *pathSearch) narrowDown(ctx context.Context) error {
	var sizes []int
	if s.good >= 0 {
		sizes = grid(s.good, s.bad)
	}
	copies := 2
	for round := 1; round <= s.cfg.MaxRounds && len(sizes) > 0; round++ {
		rep, err := s.send(ctx, sizes, copies)
		if err != nil {
			return err
		}
		s.rounds = round
		s.learn(sizes, rep)
		if len(s.got) == 0 && !s.fragBack {
			break // nothing answers: more rounds only make the user wait
		}
		s.bound()
		if s.pinned() {
			break
		}
		sizes = s.nextSizes()
		copies = 3
		if len(sizes) > maxBatch/2 {
			copies = 2
		}
	}
	return nil
}

// send sends one round: a DF echo of each size, and the fragmented echo
// until it has come back once.
func (s *pathSearch) send(ctx context.Context, sizes []int, copies int) (Replies, error) {
	batch := make([]Probe, 0, len(sizes)+1)
	for _, size := range sizes {
		batch = append(batch, Probe{Size: size, DF: true})
	}
	if s.frag.Size > 0 && !s.fragBack {
		batch = append(batch, s.frag)
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	rep, err := s.p.Send(rctx, batch, copies)
	cancel()
	if err != nil {
		return Replies{}, err
	}
	return rep, ctx.Err()
}

// learn records a round's replies: the sizes that came back, those the
// kernel refused, and one more round for each size it did send.
func (s *pathSearch) learn(sizes []int, rep Replies) {
	for pr := range rep.Got {
		if pr == s.frag {
			s.fragBack = true
		} else if pr.DF {
			s.got[pr.Size] = true
		}
	}
	for pr := range rep.TooBig {
		if pr.DF {
			s.tooBig[pr.Size] = true
		}
	}
	for _, size := range sizes {
		if !s.tooBig[size] {
			s.sentRounds[size]++
		}
	}
}

// bound moves good and bad to what the rounds so far show. The largest size
// that came back is the answer so far; a smaller one lost meanwhile was
// loss, not the limit.
func (s *pathSearch) bound() {
	s.good = -1
	for size := range s.got {
		s.good = max(s.good, size)
	}
	s.bad = s.maxPayload + 1
	for size := range s.sentRounds {
		if size > s.good && size < s.bad && !s.got[size] {
			s.bad = size
		}
	}
	for size := range s.tooBig {
		if size > s.good && size < s.bad {
			s.bad = size
		}
	}
}

// pinned tells whether the limit is known to the byte.
func (s *pathSearch) pinned() bool { return s.bad == s.good+1 }

// nextSizes are the next round's sizes between good and bad, with bad
// itself again when only one round saw it lost: that may have been loss.
func (s *pathSearch) nextSizes() []int {
	sizes := grid(s.good, s.bad)
	if s.bad <= s.maxPayload && !s.tooBig[s.bad] && s.sentRounds[s.bad] < 2 {
		sizes = append(sizes, s.bad)
	}
	return sizes
}

// result is what the search found, before judge gives the verdict.
func (s *pathSearch) result(elapsed time.Duration) *Result {
	t, hdr := s.t, s.t.headers()
	res := &Result{
		Host: t.Host, Address: t.Addr.String(), Family: "ipv4",
		Interface: t.Interface, Tunnel: t.Tunnel,
		InterfaceMTU: t.InterfaceMTU, RouteMTU: t.RouteMTU,
		Outer: t.Outer, OuterMTU: t.OuterMTU,
		MaxDFPayload: -1, FragmentPayload: s.frag.Size, Timeout: s.cfg.Timeout,
		Rounds: s.rounds, Elapsed: elapsed,
		Exact:           s.good >= 0 && s.pinned(),
		Answered:        len(s.got) > 0 || s.fragBack,
		FragmentsPassed: s.fragBack,
	}
	if t.IPv6() {
		res.Family = "ipv6"
	}
	if t.Tunnel {
		res.TunnelKind = t.Spec.Kind
	}
	if s.good >= 0 {
		res.MaxDFPayload = s.good
		res.MaxDFPacket = s.good + hdr
	}
	if len(s.tooBig) > 0 {
		res.LocalLimitPacket = slices.Min(keys(s.tooBig)) - 1 + hdr
	}
	return res
}

func keys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// judge sets the verdict and its explanation.
func judge(r *Result, t Target) {
	limit := t.limitMTU()
	if r.LocalLimitPacket > 0 && r.LocalLimitPacket < limit {
		limit = r.LocalLimitPacket
	}
	fragNote := ""
	if !r.FragmentsPassed && r.FragmentPayload > 0 {
		fragNote = "; fragmented packets are dropped on the way, which only hurts programs that send datagrams larger than the MTU"
	}
	switch {
	case !r.Answered:
		r.Verdict = VerdictNoAnswer
		r.Message = fmt.Sprintf("%s does not answer ICMP echo within %s: cannot measure the path; is it up, and does it allow ping?", r.Host, r.Timeout)
	case r.MaxDFPayload < 0:
		r.Verdict = VerdictNoAnswer
		r.Message = fmt.Sprintf("%s answers only fragmented echoes, never one with DF set: cannot measure the path", r.Host)
	case r.MaxDFPacket >= limit && limit < t.limitMTU():
		r.Verdict = VerdictOK
		r.Message = fmt.Sprintf("the path carries %d-byte packets and the kernel knows it (it refuses larger DF packets with EMSGSIZE), so TCP adapts%s", r.MaxDFPacket, fragNote)
	case r.MaxDFPacket >= limit:
		r.Verdict = VerdictOK
		r.Message = fmt.Sprintf("no problem: the path carries the full MTU of %s (%d-byte packets)%s", r.Interface, limit, fragNote)
	case t.Tunnel && !r.FragmentsPassed && r.FragmentPayload > 0:
		r.Verdict = VerdictFragmentsDropped
		r.LimitWhy = explainLimit(r.MaxDFPacket, t)
		r.Message = fmt.Sprintf("packets over %d bytes are lost without any error: %s (MTU %d) wraps them into outer packets that get fragmented, and the fragments are dropped between WSL and Windows (the WSL2 NAT fragment bug)%s — run `wslmtu fix`", r.MaxDFPacket, r.Interface, t.InterfaceMTU, andWhy(r.LimitWhy))
	case t.Tunnel:
		r.Verdict = VerdictBlackHole
		r.LimitWhy = explainLimit(r.MaxDFPacket, t)
		r.Message = fmt.Sprintf("packets over %d bytes are lost without any error although fragments get through: the path beneath %s carries less than its MTU %d and says nothing%s — lower the tunnel MTU or raise the outer one (`wslmtu fix`)", r.MaxDFPacket, r.Interface, t.InterfaceMTU, andWhy(r.LimitWhy))
	default:
		r.Verdict = VerdictBlackHole
		r.Message = fmt.Sprintf("packets over %d bytes are lost without any error: a link on the path carries less than the MTU %d of %s and sends no ICMP \"too big\" (a path MTU black hole)", r.MaxDFPacket, limit, r.Interface)
	}
}

// andWhy appends an explanation as the message's next clause.
func andWhy(why string) string {
	if why == "" {
		return ""
	}
	return "; " + why
}

// explainLimit names the tunnel arithmetic that predicts a measured largest
// packet: WireGuard pads to 16 bytes, so over an outer MTU the largest inner
// packet is floor16(outer − overhead), and the overhead tells the underlay.
// It is "" when no underlay predicts the packet (the limit is elsewhere).
func explainLimit(packet int, t Target) string {
	if !t.Tunnel || t.OuterMTU <= 0 || packet <= 0 {
		return ""
	}
	for _, u := range []tunnel.Underlay{tunnel.IPv4, tunnel.IPv6} {
		inner, all := t.Spec.LargestInner(t.OuterMTU, t.InterfaceMTU, u)
		if all || inner != packet {
			continue
		}
		switch t.Spec.Kind {
		case tunnel.WireGuard:
			return fmt.Sprintf("%d = floor16(%d − %d): WireGuard over an %s underlay on %s (MTU %d)",
				packet, t.OuterMTU, tunnel.WireGuardOverhead(u), u, t.Outer, t.OuterMTU)
		case tunnel.Other:
			return fmt.Sprintf("%d = %d − %d, the overhead the config gives %s, on %s (MTU %d)",
				packet, t.OuterMTU, t.Spec.Overhead, t.Interface, t.Outer, t.OuterMTU)
		}
	}
	return ""
}

// ErrBadHost is wrapped by Run's error when the host cannot be resolved or is
// not usable: the fault is in the input, not the path.
var ErrBadHost = errors.New("bad host")

// ErrBadTimeout is wrapped by CheckTimeout's and Run's error for a round
// timeout out of bounds.
var ErrBadTimeout = errors.New("bad timeout")

// ErrNoPermission is wrapped by Run's error when no ICMP socket can be opened.
var ErrNoPermission = errors.New("needs root or CAP_NET_RAW, or allow ping sockets: sysctl net.ipv4.ping_group_range")
