package probe

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/testenv/logbuf"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// simPath is a path with a DF threshold, a local EMSGSIZE limit, optional
// fragment drop, random loss from a fixed seed, or no answer at all.
type simPath struct {
	maxDF    int  // largest DF payload that crosses; -1: none
	localMax int  // > 0: DF payloads above it fail locally with EMSGSIZE
	fragOK   bool // the non-DF (fragmented) echo crosses
	dead     bool // nothing answers; Send waits for ctx like a real socket
	loss     float64
	fragLoss int // the first fragLoss copies of non-DF echoes are lost
	rng      *rand.Rand
	err      error

	mu     sync.Mutex
	rounds [][]Probe
	copies []int
	got    map[Probe]bool
}

func (s *simPath) Send(ctx context.Context, probes []Probe, copies int) (Replies, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return Replies{}, s.err
	}
	s.rounds = append(s.rounds, append([]Probe(nil), probes...))
	s.copies = append(s.copies, copies)
	if s.got == nil {
		s.got = map[Probe]bool{}
	}
	if s.dead {
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
	}
	tooBig := map[Probe]bool{}
	for range copies {
		for _, p := range probes {
			if p.DF && s.localMax > 0 && p.Size > s.localMax {
				tooBig[p] = true
				continue
			}
			if s.dead {
				continue
			}
			if s.loss > 0 && s.rng.Float64() < s.loss {
				continue
			}
			if !p.DF && s.fragLoss > 0 {
				s.fragLoss--
				continue
			}
			if (p.DF && p.Size <= s.maxDF) || (!p.DF && s.fragOK) {
				s.got[p] = true
			}
		}
	}
	got := map[Probe]bool{}
	for p := range s.got {
		got[p] = true
	}
	return Replies{Got: got, TooBig: tooBig}, nil
}

func target4(iface string, mtu int, tunnel bool) Target {
	return Target{Host: "peer", Addr: netip.MustParseAddr("100.64.0.2"), Interface: iface, InterfaceMTU: mtu, Tunnel: tunnel}
}

func target6(iface string, mtu int, tunnel bool) Target {
	return Target{Host: "peer6", Addr: netip.MustParseAddr("fd7a:115c:a1e0::2"), Interface: iface, InterfaceMTU: mtu, Tunnel: tunnel}
}

func search(t *testing.T, p Path, tg Target) *Result {
	t.Helper()
	res, err := Search(context.Background(), p, tg, Config{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	return res
}

// Every threshold from 0 to the full MTU is found to the byte, in at most
// two rounds after the first lone echo, each round with a bounded batch.
func TestSearchEveryThreshold(t *testing.T) {
	for _, tc := range []struct {
		name string
		tg   Target
	}{
		{"ipv4-1500", target4("tailscale0", 1500, true)},
		{"ipv6-1280", target6("tailscale0", 1280, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maxPayload := tc.tg.InterfaceMTU - tc.tg.headers()
			for T := 0; T <= maxPayload; T++ {
				sim := &simPath{maxDF: T}
				res := search(t, sim, tc.tg)
				if res.MaxDFPayload != T || !res.Exact {
					t.Fatalf("threshold %d: got payload %d exact=%v", T, res.MaxDFPayload, res.Exact)
				}
				if res.MaxDFPacket != T+tc.tg.headers() {
					t.Fatalf("threshold %d: packet %d, want %d", T, res.MaxDFPacket, T+tc.tg.headers())
				}
				// One round when the first grid already pins the limit: the
				// full MTU crosses, or the next size up is on the grid.
				wantRounds := 2
				first := append([]int{0}, grid(0, maxPayload+1)...)
				if T == maxPayload || (slices.Contains(first, T) && slices.Contains(first, T+1)) {
					wantRounds = 1
				}
				if res.Rounds != wantRounds {
					t.Fatalf("threshold %d: %d rounds, want %d", T, res.Rounds, wantRounds)
				}
				for i, r := range sim.rounds {
					if len(r) > maxBatch+2 {
						t.Fatalf("threshold %d: round %d sent %d sizes, more than a batch", T, i+1, len(r))
					}
					if sim.copies[i] < 2 {
						t.Fatalf("threshold %d: round %d sent %d copies; loss needs at least 2", T, i+1, sim.copies[i])
					}
				}
				want := VerdictFragmentsDropped
				if T == maxPayload {
					want = VerdictOK
				}
				if res.Verdict != want {
					t.Fatalf("threshold %d: verdict %s, want %s (%s)", T, res.Verdict, want, res.Message)
				}
			}
		})
	}
}

// With 10% loss the answer never exceeds the threshold, is nearly always
// exact, and never takes more than the allowed rounds.
func TestSearchToleratesLoss(t *testing.T) {
	tg := target4("eth0", 1500, false)
	rng := rand.New(rand.NewPCG(1, 2))
	exact, total := 0, 0
	for T := 0; T <= 1472; T += 7 {
		sim := &simPath{maxDF: T, fragOK: true, loss: 0.1, rng: rng}
		res := search(t, sim, tg)
		total++
		if res.MaxDFPayload > T {
			t.Fatalf("threshold %d: reported %d, more than crosses", T, res.MaxDFPayload)
		}
		if res.MaxDFPayload < T-2 {
			t.Errorf("threshold %d: reported %d after %d rounds", T, res.MaxDFPayload, res.Rounds)
		}
		if res.MaxDFPayload == T {
			exact++
		}
		if res.Rounds > defaultRounds {
			t.Fatalf("threshold %d: %d rounds", T, res.Rounds)
		}
	}
	if exact*100 < total*95 {
		t.Errorf("only %d of %d thresholds found exactly under 10%% loss", exact, total)
	}
}

// A limit seen in round 1 that was only loss is re-tried, and the search goes
// past it.
func TestSearchRetriesCoarseLimitLostOnce(t *testing.T) {
	tg := target4("eth0", 1500, false)
	sim := &lossyOnce{simPath: simPath{maxDF: 1400, fragOK: true}, drop: map[int]bool{1376: true, 1392: true}}
	res := search(t, sim, tg)
	if res.MaxDFPayload != 1400 || !res.Exact {
		t.Fatalf("payload %d exact=%v after %d rounds, want 1400 exact", res.MaxDFPayload, res.Exact, res.Rounds)
	}
}

// lossyOnce loses the first round's copies of some DF sizes.
type lossyOnce struct {
	simPath
	drop  map[int]bool
	round int
}

func (l *lossyOnce) Send(ctx context.Context, probes []Probe, copies int) (Replies, error) {
	l.round++
	if l.round > 1 {
		return l.simPath.Send(ctx, probes, copies)
	}
	var keep []Probe
	for _, p := range probes {
		if !p.DF || !l.drop[p.Size] {
			keep = append(keep, p)
		}
	}
	return l.simPath.Send(ctx, keep, copies)
}

func TestSearchNoReply(t *testing.T) {
	sim := &simPath{maxDF: -1, dead: true}
	tg := target4("eth0", 1500, false)
	res, err := Search(context.Background(), sim, tg, Config{Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != VerdictNoAnswer || res.Answered || res.Rounds != 0 || len(sim.rounds) != 1 {
		t.Fatalf("verdict %s answered=%v rounds=%d sends=%d, want no-answer after the first lone echo", res.Verdict, res.Answered, res.Rounds, len(sim.rounds))
	}
	want := "peer does not answer ICMP echo within 20ms: cannot measure the path; is it up, and does it allow ping?"
	if res.Message != want {
		t.Fatalf("message %q\nwant    %q", res.Message, want)
	}
	if res.Verdict.Problem() {
		t.Fatal("no answer is a failure to measure, not a problem of the path")
	}
}

// The kernel refusing DF sends over a learned path MTU is a limit, not loss:
// the answer is that limit and it is healthy, because TCP adapts.
func TestSearchLocalEMSGSIZE(t *testing.T) {
	sim := &simPath{maxDF: 1500, localMax: 1372, fragOK: true}
	res := search(t, sim, target4("eth0", 1500, false))
	if res.MaxDFPayload != 1372 || res.MaxDFPacket != 1400 || res.LocalLimitPacket != 1400 {
		t.Fatalf("payload %d packet %d local %d, want 1372/1400/1400", res.MaxDFPayload, res.MaxDFPacket, res.LocalLimitPacket)
	}
	if res.Verdict != VerdictOK {
		t.Fatalf("verdict %s: %s", res.Verdict, res.Message)
	}
	if !strings.Contains(res.Message, "kernel knows it") {
		t.Fatalf("message does not explain the local limit: %s", res.Message)
	}
	// And a black hole below the local limit is still a black hole.
	sim = &simPath{maxDF: 1200, localMax: 1372, fragOK: true}
	res = search(t, sim, target4("eth0", 1500, false))
	if res.MaxDFPayload != 1200 || res.Verdict != VerdictBlackHole {
		t.Fatalf("payload %d verdict %s, want 1200 black-hole", res.MaxDFPayload, res.Verdict)
	}
}

// The WSL lab numbers: tunnel 1280 over eth0 1280, WireGuard padding.
func TestSearchWSLFragmentBug(t *testing.T) {
	sim := &simPath{maxDF: 1188}
	res := search(t, sim, target4("tailscale0", 1280, true))
	if res.MaxDFPayload != 1188 || res.MaxDFPacket != 1216 || res.FragmentsPassed {
		t.Fatalf("payload %d packet %d fragments=%v", res.MaxDFPayload, res.MaxDFPacket, res.FragmentsPassed)
	}
	if res.Verdict != VerdictFragmentsDropped || !res.Verdict.Problem() {
		t.Fatalf("verdict %s", res.Verdict)
	}
	for _, w := range []string{"packets over 1216 bytes are lost without any error", "WSL2 NAT fragment bug", "wslmtu fix"} {
		if !strings.Contains(res.Message, w) {
			t.Errorf("message lacks %q: %s", w, res.Message)
		}
	}
	if res.FragmentPayload <= 1280-28 {
		t.Errorf("fragment probe %d bytes would not be fragmented by a 1280 MTU", res.FragmentPayload)
	}
}

func TestSearchVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sim    *simPath
		tg     Target
		want   Verdict
		phrase string
	}{
		{"healthy", &simPath{maxDF: 1472, fragOK: true}, target4("eth0", 1500, false), VerdictOK, "carries the full MTU of eth0 (1500-byte packets)"},
		{"healthy-frags-dropped", &simPath{maxDF: 1232}, target6("wg0", 1280, true), VerdictOK, "fragmented packets are dropped"},
		{"black-hole", &simPath{maxDF: 1372, fragOK: true}, target4("eth0", 1500, false), VerdictBlackHole, "packets over 1400 bytes are lost without any error"},
		{"tunnel-black-hole", &simPath{maxDF: 1100, fragOK: true}, target4("wg0", 1420, true), VerdictBlackHole, "although fragments get through"},
		{"ipv6-fragment-bug", &simPath{maxDF: 1168}, target6("tailscale0", 1280, true), VerdictFragmentsDropped, "packets over 1216 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := search(t, tc.sim, tc.tg)
			if res.Verdict != tc.want || !strings.Contains(res.Message, tc.phrase) {
				t.Fatalf("verdict %s, message %q; want %s with %q", res.Verdict, res.Message, tc.want, tc.phrase)
			}
		})
	}
}

// A fragment echo lost once is sent again in the next round.
func TestSearchRetriesFragmentProbe(t *testing.T) {
	sim := &simPath{maxDF: 1000, fragOK: true, fragLoss: 2}
	res := search(t, sim, target4("eth0", 1500, false))
	if !res.FragmentsPassed {
		t.Fatal("fragment echo lost in round 1 was not retried")
	}
}

func TestSearchPathError(t *testing.T) {
	sim := &simPath{err: errors.New("network is unreachable")}
	_, err := Search(context.Background(), sim, target4("eth0", 1500, false), Config{})
	if err == nil || !strings.Contains(err.Error(), "network is unreachable") {
		t.Fatalf("err = %v", err)
	}
}

func TestSearchRejectsTinyMTU(t *testing.T) {
	_, err := Search(context.Background(), &simPath{}, target6("eth0", 40, false), Config{})
	if err == nil || !strings.Contains(err.Error(), "MTU 40 of eth0") {
		t.Fatalf("err = %v", err)
	}
}

func TestProgressOnlyWhenSlow(t *testing.T) {
	old := progressAfter
	progressAfter = time.Millisecond
	t.Cleanup(func() { progressAfter = old })
	var buf logbuf.Buffer
	sim := &simPath{dead: true}
	if _, err := Search(context.Background(), sim, target4("eth0", 1500, false), Config{Timeout: 100 * time.Millisecond, Progress: &buf}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "probing peer (100.64.0.2) via eth0…\n" {
		t.Fatalf("progress %q", got)
	}

	progressAfter = time.Hour
	buf = logbuf.Buffer{}
	if _, err := Search(context.Background(), &simPath{maxDF: 1472}, target4("eth0", 1500, false), Config{Progress: &buf}); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "" {
		t.Fatalf("a quick probe printed progress %q", buf.String())
	}
}

func TestResultText(t *testing.T) {
	res := search(t, &simPath{maxDF: 1188}, target4("tailscale0", 1280, true))
	text := res.String()
	for _, w := range []string{
		"host        peer (100.64.0.2, IPv4)\n",
		"route       via tailscale0 (tunnel), interface MTU 1280\n",
		"largest DF  payload 1188 bytes = 1216-byte packet\n",
		"fragments   lost (2000-byte echo without DF, fragmented locally)\n",
		"verdict     packets over 1216 bytes",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q:\n%s", w, text)
		}
	}
	dead, err := Search(context.Background(), &simPath{dead: true}, target6("eth0", 1500, false), Config{Timeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if text := dead.String(); strings.Contains(text, "largest DF") || !strings.Contains(text, "(fd7a:115c:a1e0::2, IPv6)") {
		t.Errorf("no-answer text:\n%s", text)
	}
}

func TestResultJSON(t *testing.T) {
	res := search(t, &simPath{maxDF: 1188}, target4("tailscale0", 1280, true))
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"host": "peer", "address": "100.64.0.2", "family": "ipv4", "interface": "tailscale0",
		"tunnel": true, "interface_mtu": 1280.0, "max_df_payload": 1188.0, "max_df_packet": 1216.0,
		"fragments_passed": false, "verdict": "fragments-dropped", "exact": true,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func TestGrid(t *testing.T) {
	g := grid(-1, 1473)
	if g[0] != 0 || g[len(g)-1] != 1472 || g[1] != 16 || len(g) > maxBatch+1 {
		t.Fatalf("grid(-1,1473) = %v", g)
	}
	if g := grid(1184, 1200); len(g) != 15 || g[0] != 1185 || g[14] != 1199 {
		t.Fatalf("grid(1184,1200) = %v", g)
	}
	if g := grid(5, 6); g != nil {
		t.Fatalf("grid(5,6) = %v", g)
	}
}

// A tunnel's measured limit is explained by the tunnel arithmetic when it
// matches: 1216 = floor16(1280 − 60) is WireGuard over an IPv4 underlay,
// 1200 = floor16(1280 − 80) over IPv6; a limit nothing predicts is left
// unexplained rather than guessed.
func TestSearchExplainsLimit(t *testing.T) {
	wg := tunnel.Spec{Kind: tunnel.WireGuard}
	over := func(tg Target, outer int) Target {
		tg.Spec, tg.Outer, tg.OuterMTU = wg, "eth0", outer
		return tg
	}
	for _, tc := range []struct {
		name string
		sim  *simPath
		tg   Target
		want string
	}{
		{"ipv4-underlay", &simPath{maxDF: 1188}, over(target4("tailscale0", 1280, true), 1280),
			"1216 = floor16(1280 − 60): WireGuard over an IPv4 underlay on eth0 (MTU 1280)"},
		{"ipv4-underlay-probed-over-ipv6", &simPath{maxDF: 1168}, over(target6("tailscale0", 1280, true), 1280),
			"1216 = floor16(1280 − 60): WireGuard over an IPv4 underlay on eth0 (MTU 1280)"},
		{"ipv6-underlay", &simPath{maxDF: 1172}, over(target4("tailscale0", 1280, true), 1280),
			"1200 = floor16(1280 − 80): WireGuard over an IPv6 underlay on eth0 (MTU 1280)"},
		{"black-hole-with-fragments", &simPath{maxDF: 1188, fragOK: true}, over(target4("wg0", 1420, true), 1280),
			"1216 = floor16(1280 − 60): WireGuard over an IPv4 underlay on eth0 (MTU 1280)"},
		{"other-overhead", &simPath{maxDF: 1172}, func() Target {
			tg := over(target4("gre1", 1400, true), 1280)
			tg.Spec = tunnel.Spec{Kind: tunnel.Other, Overhead: 80}
			return tg
		}(), "1200 = 1280 − 80, the overhead the config gives gre1, on eth0 (MTU 1280)"},
		{"limit-elsewhere", &simPath{maxDF: 1100}, over(target4("tailscale0", 1280, true), 1280), ""},
		{"outer-unknown", &simPath{maxDF: 1188}, target4("tailscale0", 1280, true), ""},
		{"zerotier", &simPath{maxDF: 1188}, func() Target {
			tg := over(target4("zt0", 2800, true), 1280)
			tg.Spec = tunnel.Spec{Kind: tunnel.ZeroTier}
			return tg
		}(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := search(t, tc.sim, tc.tg)
			if res.LimitWhy != tc.want {
				t.Fatalf("LimitWhy %q, want %q (verdict %s)", res.LimitWhy, tc.want, res.Verdict)
			}
			if tc.want == "" {
				return
			}
			if !strings.Contains(res.Message, "; "+tc.want+" — ") || !strings.Contains(res.String(), "explained   "+tc.want+"\n") {
				t.Errorf("message or text lacks the explanation:\n%s", res)
			}
		})
	}
}

func TestCheckAddrAcceptsHosts(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "::1", "100.64.0.2", "fd7a:115c:a1e0::2", "169.254.1.1", "fe80::1%eth0", "10.77.1.255", "::ffff:192.0.2.1"} {
		if err := CheckAddr(s, netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s): %v", s, err)
		}
	}
	err := CheckAddr("sinkhole.example", netip.MustParseAddr("0.0.0.0"))
	if !errors.Is(err, ErrBadHost) || !strings.Contains(err.Error(), "sinkhole.example resolves to 0.0.0.0, the unspecified address") {
		t.Errorf("a name that resolves to 0.0.0.0: %v", err)
	}
}

func TestCheckTimeoutBounds(t *testing.T) {
	for _, d := range []time.Duration{MinTimeout, DefaultTimeout, MaxTimeout} {
		if err := CheckTimeout(d); err != nil {
			t.Errorf("CheckTimeout(%s): %v", d, err)
		}
	}
	for _, d := range []time.Duration{0, time.Nanosecond, MinTimeout - 1, MaxTimeout + 1, -time.Second} {
		if err := CheckTimeout(d); !errors.Is(err, ErrBadTimeout) || !strings.Contains(err.Error(), d.String()) {
			t.Errorf("CheckTimeout(%s) = %v, want ErrBadTimeout naming it", d, err)
		}
	}
}
