package fix

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

var (
	fuzzModes      = []string{"nat", "mirrored", "consomme", "virtioproxy", "none", "", "bridged"}
	fuzzTunnels    = []string{"tailscale0", "wg0", "wt0", "zt3jnkd6ic", "corp", "eth1", "lo"}
	fuzzPatterns   = []string{"tailscale0", "wg*", "wt*", "zt*", "eth*", "e*", "*", "corp", "eth0", "l?"}
	fuzzStrategies = config.Strategies
	fuzzScopes     = config.Scopes
)

func pick[T any](list []T, n uint8) T { return list[int(n)%len(list)] }

// FuzzPlan builds random hosts and configs on the fake kernel and checks
// what must hold for every plan: no MTU target outside what the kernel and
// the config allow, the outer interface and lo never treated as tunnels,
// applying a plan makes the next one empty (nothing feeds on its own
// output), a further reset is repaired by the same writes, and revert puts
// every interface, route and rule back as it was.
// Run: go test ./fix -run '^$' -fuzz FuzzPlan -fuzztime 2m
func FuzzPlan(f *testing.F) {
	f.Add(uint16(1280), uint16(1280), uint16(0), uint8(0), uint8(0), uint8(0), uint8(0), uint16(1500), uint8(0), uint8(0))
	f.Add(uint16(1280), uint16(1280), uint16(1420), uint8(1), uint8(1), uint8(0), uint8(1), uint16(1400), uint8(1), uint8(1))
	f.Add(uint16(68), uint16(1280), uint16(0), uint8(2), uint8(0), uint8(1), uint8(0), uint16(1500), uint8(2), uint8(3))
	f.Add(uint16(200), uint16(1280), uint16(0), uint8(3), uint8(0), uint8(0), uint8(4), uint16(1500), uint8(0), uint8(2))
	f.Add(uint16(1400), uint16(1420), uint16(2800), uint8(0), uint8(0), uint8(1), uint8(2), uint16(9000), uint8(5), uint8(6))
	f.Add(uint16(1500), uint16(1500), uint16(1500), uint8(0), uint8(1), uint8(2), uint8(3), uint16(1280), uint8(6), uint8(4))
	f.Fuzz(func(t *testing.T, ethMTU, tunMTU, tun2MTU uint16, strategy, scope, mode, names uint8, maxOuter uint16, pattern, flags uint8) {
		eth := clampMTU(int(ethMTU))
		k := fakekernel.NewWSL(eth, clampMTU(int(tunMTU)))
		first := pick(fuzzTunnels, names)
		if first != "tailscale0" && first != "lo" && first != "eth1" {
			k.Rename("tailscale0", first)
		}
		if tun2MTU != 0 {
			second := pick(fuzzTunnels, names/7+1)
			if second != first && second != "lo" && second != "tailscale0" {
				kind := "tun"
				if flags&1 != 0 {
					kind = "wireguard"
				}
				k.AddLink(detect.Link{Name: second, MTU: clampMTU(int(tun2MTU)), Kind: kind, Up: flags&2 == 0})
				if flags&4 != 0 {
					k.SetWireGuard(second, detect.WireGuardDevice{ListenPort: 51820 + int(flags)})
				}
			}
		}
		if flags&8 != 0 {
			k.ReplaceRoute(detect.Route{Family: 6, Table: detect.MainTable, Dst: "default", Gw: "fe80::1", LinkIndex: 2, Metric: 1024})
		}
		cfg := config.Default()
		cfg.MTUStrategy = pick(fuzzStrategies, strategy)
		cfg.OuterScope = pick(fuzzScopes, scope)
		cfg.MaxOuterMTU = min(max(int(maxOuter), config.MinMTU), config.MaxMTU)
		cfg.Tunnels = []string{"tailscale0", pick(fuzzPatterns, pattern)}
		if cfg.Validate() != nil {
			return // the config refuses it before any plan (a pattern that selects lo)
		}
		w := newWorld(t, k, pick(fuzzModes, mode), cfg)
		st, err := detect.Observe(k.Sources(w.mode), k, cfg)
		if err != nil {
			var pe *detect.PatternError
			if !errors.As(err, &pe) {
				t.Fatalf("observe: %v", err)
			}
			return // refused as bad input: a pattern that selects the outer interface
		}
		for _, tun := range append(st.Tunnels, st.DownTunnels...) {
			if tun.Name == "lo" || (st.Outer != nil && tun.Index == st.Outer.Index) {
				t.Fatalf("%s selected as a tunnel (outer %v)", tun.Name, st.Outer)
			}
		}
		initial := dump(t, k)
		p := NewPlan(st, w.record(), cfg)
		for _, a := range p.Actions {
			if a.To < 68 || a.To > 65535 {
				t.Fatalf("impossible target %s", a)
			}
			if st.Outer != nil && a.Link == st.Outer.Name && a.To > a.From && a.To > cfg.MaxOuterMTU {
				t.Fatalf("raised above max_outer_mtu %d: %s", cfg.MaxOuterMTU, a)
			}
		}
		for _, r := range p.Routes {
			if r.Op == RouteSetMTU && r.To != 0 && (r.To < 68 || (r.Route.Family == 6 && r.To < 1280)) {
				t.Fatalf("impossible route mtu %s", r)
			}
		}
		if _, _, err := Apply(p, w.record(), k, w.store); err != nil {
			t.Fatalf("apply %s: %v", changeText(p), err)
		}
		after := dump(t, k)
		again := w.plan()
		if n := len(again.Actions) + len(again.Routes) + len(again.Rules); n != 0 {
			t.Fatalf("a second plan after\n%s\nis not empty:\n%s", changeText(p), changeText(again))
		}
		// WSL pushes its value again: the repair writes the same as before.
		if st.Outer != nil {
			if o := st.Link(st.Outer.Name); o != nil && k.MTU(o.Name) != o.MTU {
				k.Reset(o.Name, o.MTU)
				w.apply()
				if got := dump(t, k); got != after {
					t.Fatalf("the repair after a reset left\n%s\nwant\n%s", got, after)
				}
			}
		}
		w.revert()
		if got := dump(t, k); got != initial {
			t.Fatalf("revert left\n%s\nwant\n%s\nplan was\n%s", got, initial, changeText(p))
		}
	})
}

func clampMTU(n int) int { return min(max(n, 68), 9000) }

// FuzzRecord: a revert record never panics the parser; one it accepts
// holds only possible MTUs and survives a save and load unchanged.
// Run: go test ./fix -run '^$' -fuzz FuzzRecord -fuzztime 2m
func FuzzRecord(f *testing.F) {
	for _, s := range []string{
		`{"version":2,"links":{"eth0":{"before":1280,"wrote":1360}}}`,
		`{"version":1,"original_mtu":{"eth0":1280},"mss":{"backend":"nft","families":["ipv4"],"table":"mangle","chains":["WSLMTU-IN"],"jumps":[]}}`,
		`{"version":2,"links":{},"routes":[{"route":{"family":4,"table":254,"dst":"default","gateway":"172.28.0.1","ifindex":2},"before":0,"wrote":1280}],"policy":{"table":5200,"rules":[{"family":4,"priority":5190,"table":254,"fwmark":524288,"fwmask":16711680,"suppress_prefixlength":0}],"routes":[]}}`,
		`{}`, `null`, `{"version":1}`, `{"version":7}`, `[]`, `{"version":2,"links":{"eth0":{"before":-1}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := parseRecord(data)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("an empty error")
			}
			return
		}
		for name, l := range rec.Links {
			if l.Before < 68 || (l.Wrote != 0 && l.Wrote < 68) {
				t.Fatalf("accepted %s %+v", name, l)
			}
		}
		store := Store{Dir: t.TempDir()}
		if err := store.SaveRecord(rec); err != nil {
			t.Fatal(err)
		}
		back, found, err := store.LoadRecord()
		if err != nil || !found {
			t.Fatalf("a saved record does not load: %v", err)
		}
		a, _ := json.Marshal(rec)
		b, _ := json.Marshal(back)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the record:\n%s\n%s", a, b)
		}
	})
}
