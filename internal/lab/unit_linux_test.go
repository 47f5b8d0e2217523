package lab

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
)

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil || o.EthMTU != 1280 || o.TunnelMTU != 1280 || o.IPv6Underlay {
		t.Fatalf("withDefaults() = %+v, %v; want 1280/1280/v4", o, err)
	}
	for _, bad := range []struct {
		o    Options
		want string
	}{
		{Options{EthMTU: 100}, "EthMTU 100"},
		{Options{TunnelMTU: 70000}, "TunnelMTU 70000"},
		{Options{EthMTU: 1200, IPv6Underlay: true}, "EthMTU 1200"},
	} {
		if _, err := bad.o.withDefaults(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("withDefaults(%+v) error = %v, want one containing %q", bad.o, err, bad.want)
		}
	}
}

func TestWGKeyPublicMatchesPrivate(t *testing.T) {
	k, err := newWGKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := hex.DecodeString(k.private)
	if err != nil || len(priv) != 32 {
		t.Fatalf("private key %q: %v", k.private, err)
	}
	if priv[0]&7 != 0 || priv[31]&0x80 != 0 || priv[31]&0x40 == 0 {
		t.Errorf("private key not clamped: %x", priv)
	}
	pub, _ := curve25519.X25519(priv, curve25519.Basepoint)
	if hex.EncodeToString(pub) != k.public {
		t.Errorf("public key %s does not derive from private key", k.public)
	}
}

func TestNodeConfigUAPI(t *testing.T) {
	c := nodeConfig{
		privateKey: "aa", listenPort: 41641, peerPublic: "bb",
		endpoint: "[fd00:5:2::2]:51820", keepalive: 5,
		allowedIPs: []string{"100.64.0.0/24", "fd7a:115c:a1e0::/64"},
	}
	want := `private_key=aa
listen_port=41641
replace_peers=true
public_key=bb
endpoint=[fd00:5:2::2]:51820
persistent_keepalive_interval=5
replace_allowed_ips=true
allowed_ip=100.64.0.0/24
allowed_ip=fd7a:115c:a1e0::/64
`
	if got := c.uapi(); got != want {
		t.Errorf("uapi() =\n%s\nwant\n%s", got, want)
	}
	c.endpoint, c.keepalive = "", 0
	if got := c.uapi(); strings.Contains(got, "endpoint") || strings.Contains(got, "keepalive") {
		t.Errorf("uapi() without endpoint/keepalive still mentions them:\n%s", got)
	}
}

func TestFirewallRulesDropFragmentsFromWSLOnly(t *testing.T) {
	common := []string{
		"hook prerouting priority -450",
		`iifname "wsl" ip frag-off & 0x3fff != 0 counter drop`,
		`iifname "wsl" exthdr frag exists counter drop`,
		"type filter hook output priority 0",
		`oifname "wsl" icmp type destination-unreachable icmp code frag-needed counter drop`,
		`oifname "wsl" icmpv6 type packet-too-big counter drop`,
	}
	nat := []string{
		`oifname { "lan0", "vpn0" } ip saddr 172.24.0.0/20 masquerade`,
		`oifname { "lan0", "vpn0" } ip6 saddr fd00:5:1::/64 masquerade`,
	}
	r := firewallRules(true)
	for _, want := range append(common, nat...) {
		if !strings.Contains(r, want) {
			t.Errorf("NAT ruleset lacks %q:\n%s", want, r)
		}
	}
	// Mirrored mode: the same drops, no NAT.
	r = firewallRules(false)
	for _, want := range common {
		if !strings.Contains(r, want) {
			t.Errorf("mirrored ruleset lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r, "masquerade") {
		t.Errorf("mirrored ruleset has NAT:\n%s", r)
	}
}

// The port tunnel's name must be a valid interface name, match the default
// tunnel pattern wg*, and be what RemoveStale takes for a lab's socket.
func TestPortTunnelNames(t *testing.T) {
	name := portTunnelPrefix + "1a2b"
	if len(name) > 15 || !strings.HasPrefix(name, "wg") {
		t.Errorf("port tunnel name %q: want ≤ 15 characters starting wg", name)
	}
	if !staleUAPI.MatchString(name+".sock") || staleUAPI.MatchString("wg0.sock") {
		t.Errorf("staleUAPI %s: must match %s.sock and only lab sockets", staleUAPI, name)
	}
	for _, n := range []string{"wslmtu-12-0badc0de-windows", "wslmtu-12-0badc0de-corp", "wslmtu-12-0badc0de-hyperv"} {
		if !staleName.MatchString(n) {
			t.Errorf("staleName does not match %s", n)
		}
	}
}

// Sources make detection say the lab's mode through wslinfo.
func TestSourcesAnswerTheLabsMode(t *testing.T) {
	for _, mirrored := range []bool{false, true} {
		l := &Lab{opts: Options{Mirrored: mirrored}}
		out, err := l.Sources().Run("wslinfo", "--networking-mode")
		if want := l.NetworkingMode() + "\n"; err != nil || string(out) != want {
			t.Errorf("mirrored %v: wslinfo says %q, %v; want %q", mirrored, out, err, want)
		}
	}
}

func TestParseDropCounters(t *testing.T) {
	js := `{"nftables": [{"metainfo": {"version": "1.0.6"}},
	 {"chain": {"family": "inet", "table": "wslmtu", "name": "fragments"}},
	 {"rule": {"expr": [{"match": {}}, {"counter": {"packets": 3, "bytes": 300}}, {"drop": null}]}},
	 {"rule": {"expr": [{"match": {}}, {"counter": {"packets": 4, "bytes": 400}}, {"drop": null}]}}]}`
	n, err := parseDropCounters([]byte(js))
	if err != nil || n != 7 {
		t.Errorf("parseDropCounters = %d, %v; want 7", n, err)
	}
	if _, err := parseDropCounters([]byte("nope")); err == nil {
		t.Error("parseDropCounters accepted garbage")
	}
}

func TestResultFailClassifiesHangs(t *testing.T) {
	for _, c := range []struct {
		err  error
		hung bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), true},
		{fmt.Errorf("send: message too long"), false},
	} {
		r := Result{Check: "x", Duration: time.Second}
		got := r.fail(c.err)
		if got.Hung != c.hung || got.OK || got.Err == "" {
			t.Errorf("fail(%v) = %+v, want Hung=%v", c.err, got, c.hung)
		}
		if !strings.Contains(got.String(), c.err.Error()) {
			t.Errorf("String() = %q lacks the error", got.String())
		}
	}
	ok := Result{Check: "download", OK: true, Bytes: 55000, Duration: 12 * time.Millisecond}
	if s := ok.String(); s != "download: ok, 55000 bytes in 12ms" {
		t.Errorf("String() = %q", s)
	}
}

// RunChecks starts every check before any ends (each waits until all have
// started, which a sequential runner never gets to) and keeps their order.
func TestRunChecksSideBySideInOrder(t *testing.T) {
	const n = 4
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var started sync.WaitGroup
	started.Add(n)
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	var checks []func(context.Context) Result
	for i := range n {
		checks = append(checks, func(ctx context.Context) Result {
			started.Done()
			select {
			case <-allStarted:
				return Result{Check: fmt.Sprint(i), OK: true}
			case <-ctx.Done():
				return Result{Check: fmt.Sprint(i), Err: "not all checks started"}
			}
		})
	}
	for i, r := range RunChecks(ctx, checks) {
		if r.Check != fmt.Sprint(i) || !r.OK {
			t.Errorf("result %d = %+v", i, r)
		}
	}
}
