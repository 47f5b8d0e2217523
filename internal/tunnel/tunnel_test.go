package tunnel

import (
	"strings"
	"testing"
)

// The numbers measured in the namespace lab (DESIGN.md): a 1280 WireGuard
// tunnel needs eth0 1340 over IPv4 and 1360 over IPv6; with eth0 1280 the
// largest inner packet that crosses is 1216 over IPv4 (1200 over IPv6); the
// MSS that works on the inbound SYN is 1160 (IPv4) / 1140 (IPv6).
func TestWireGuardMeasuredNumbers(t *testing.T) {
	wg := Spec{Kind: WireGuard}
	for _, tt := range []struct {
		u    Underlay
		need int
	}{{IPv4, 1340}, {IPv6, 1360}} {
		if got := wg.OuterNeed(1280, tt.u); got != tt.need {
			t.Errorf("OuterNeed(1280, %s) = %d, want %d", tt.u, got, tt.need)
		}
	}
	if got := wg.Need(1280); got != 1360 {
		t.Errorf("Need(1280) = %d, want 1360 (the worst underlay)", got)
	}
	if inner, all := wg.LargestInner(1280, 1280, IPv4); inner != 1216 || all {
		t.Errorf("LargestInner(1280, 1280, IPv4) = %d, %v; want 1216 (1188-byte ping + 28), false", inner, all)
	}
	if inner, all := wg.LargestInner(1280, 1280, IPv6); inner != 1200 || all {
		t.Errorf("LargestInner(1280, 1280, IPv6) = %d, %v; want 1200", inner, all)
	}
	if inner, all := wg.LargestInner(1360, 1280, IPv6); inner != 1280 || !all {
		t.Errorf("LargestInner(1360, 1280, IPv6) = %d, %v; want 1280, true", inner, all)
	}
	for _, tt := range []struct {
		outer int
		fam   Family
		mss   int
	}{{1280, IPv4, 1160}, {1280, IPv6, 1140}, {1360, IPv4, 1240}, {1300, IPv4, 1176}, {1295, IPv4, 1160}} {
		mss, ok, _ := wg.ClampMSS(tt.outer, tt.fam)
		if mss != tt.mss || !ok {
			t.Errorf("ClampMSS(%d, %s) = %d, %v; want %d", tt.outer, tt.fam, mss, ok, tt.mss)
		}
	}
	if mtu, ok, _ := wg.LargestTunnelMTU(1280); mtu != 1200 || !ok {
		t.Errorf("LargestTunnelMTU(1280) = %d, %v; want 1200", mtu, ok)
	}
	if got := wg.Reason("tailscale0", 1280); got != "tailscale0 1280 + 80 WireGuard/IPv6 overhead" {
		t.Errorf("Reason = %q", got)
	}
}

func TestZeroTier(t *testing.T) {
	zt := Spec{Kind: ZeroTier}
	if got := zt.OuterNeed(2800, IPv4); got != 1460 {
		t.Errorf("OuterNeed IPv4 = %d, want 1460", got)
	}
	if got := zt.Need(1280); got != 1480 {
		t.Errorf("Need = %d, want 1480 whatever the zt mtu", got)
	}
	if got := (Spec{Kind: ZeroTier, Payload: 1400}).Need(2800); got != 1448 {
		t.Errorf("Need with local.conf 1400 = %d, want 1448", got)
	}
	if _, ok, why := zt.LargestTunnelMTU(1280); ok || !strings.Contains(why, "does not help") {
		t.Errorf("lowering a zt interface must be refused with the reason, got ok=%v %q", ok, why)
	}
	if _, ok, _ := zt.ClampMSS(1280, IPv4); ok {
		t.Error("clamping cannot help ZeroTier")
	}
	if got := zt.Reason("zt3jnkd6ic", 2800); got != "zt3jnkd6ic: ZeroTier sends 1432-byte UDP payloads + 48 UDP/IPv6" {
		t.Errorf("Reason = %q", got)
	}
}

func TestOther(t *testing.T) {
	o := Spec{Kind: Other, Overhead: 100}
	if got := o.Need(1300); got != 1400 {
		t.Errorf("Need = %d", got)
	}
	if mtu, ok, _ := o.LargestTunnelMTU(1280); !ok || mtu != 1180 {
		t.Errorf("LargestTunnelMTU = %d, %v", mtu, ok)
	}
	fixed := Spec{Kind: Other, OuterMTU: 1420, Overhead: 100}
	if got := fixed.Need(1300); got != 1420 {
		t.Errorf("a fixed requirement wins: Need = %d", got)
	}
}

func TestInfer(t *testing.T) {
	for _, tt := range []struct {
		name, linkKind string
		want           Kind
	}{
		{"tailscale0", "tun", WireGuard},
		{"wg0", "wireguard", WireGuard},
		{"wt0", "wireguard", WireGuard},
		{"corp", "wireguard", WireGuard},
		{"zt3jnkd6ic", "tun", ZeroTier},
	} {
		if got := Infer(tt.name, tt.linkKind).Kind; got != tt.want {
			t.Errorf("Infer(%s, %s) = %s, want %s", tt.name, tt.linkKind, got, tt.want)
		}
	}
}

func TestFloor16(t *testing.T) {
	for in, want := range map[int]int{1200: 1200, 1215: 1200, 1216: 1216, 0: 0, 15: 0, -1: -16, -16: -16} {
		if got := Floor16(in); got != want {
			t.Errorf("Floor16(%d) = %d, want %d", in, got, want)
		}
	}
}

// outputs is everything a Spec says about a 1300-byte tunnel and a 1280-byte
// outer interface, so one comparison pins every method for every kind.
type outputs struct {
	Need4, Need6     int
	Reason, Describe string

	Lower    int
	LowerOK  bool
	LowerWhy string

	// Inner at outer 1280 (short), at exactly the need (fits) and at 50
	// (below the overhead: never negative).
	Short, AtNeed, Tiny        int
	AllShort, AllNeed, AllTiny bool

	MSS4, MSS6 int
	MSSOK      bool
	MSSWhy     string
	ClampWhy   string
}

func outputsOf(s Spec, name string) outputs {
	const tun, outer = 1300, 1280
	o := outputs{
		Need4:    s.OuterNeed(tun, IPv4),
		Need6:    s.OuterNeed(tun, IPv6),
		Reason:   s.Reason(name, tun),
		Describe: s.Describe(tun),
	}
	o.Lower, o.LowerOK, o.LowerWhy = s.LargestTunnelMTU(outer)
	o.Short, o.AllShort = s.LargestInner(outer, tun, IPv6)
	o.AtNeed, o.AllNeed = s.LargestInner(s.Need(tun), tun, IPv6)
	o.Tiny, o.AllTiny = s.LargestInner(50, tun, IPv6)
	o.MSS4, o.MSSOK, o.MSSWhy = s.ClampMSS(outer, IPv4)
	o.MSS6, _, _ = s.ClampMSS(outer, IPv6)
	if o.MSSOK {
		o.ClampWhy = s.ClampWhy(outer, IPv4)
	}
	return o
}

func TestSpecOutputs(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec Spec
		want outputs
	}{
		{"wg0", Spec{Kind: WireGuard}, outputs{
			Need4: 1360, Need6: 1380,
			Reason:   "wg0 1300 + 80 WireGuard/IPv6 overhead",
			Describe: "WireGuard: outer ≥ mtu + 80 = 1380 (IPv6 underlay; + 60 = 1360 over IPv4)",
			Lower:    1200, LowerOK: true,
			Short: 1200, AtNeed: 1300, AllNeed: true, Tiny: 0,
			MSS4: 1160, MSS6: 1140, MSSOK: true,
			ClampWhy: "floor16(1280 − 80) − 40, WireGuard pads to 16 bytes",
		}},
		{"zt0", Spec{Kind: ZeroTier, Payload: 1400}, outputs{
			Need4: 1428, Need6: 1448,
			Reason:   "zt0: ZeroTier sends 1400-byte UDP payloads + 48 UDP/IPv6",
			Describe: "ZeroTier: outer ≥ 1448 (IPv6 underlay; 1428 over IPv4): it sends 1400-byte UDP payloads whatever its own mtu",
			LowerWhy: "ZeroTier sends 1400-byte UDP payloads whatever the interface's mtu, so lowering it does not help",
			AtNeed:   1300, AllNeed: true,
			MSSWhy: "ZeroTier sends 1400-byte UDP payloads whatever the segment size, so clamping the MSS does not help",
		}},
		{"corp", Spec{Kind: Other, Overhead: 100, Source: "[[tunnel]] in the config"}, outputs{
			Need4: 1400, Need6: 1400,
			Reason:   "corp 1300 + 100 overhead ([[tunnel]] in the config)",
			Describe: "other: outer ≥ mtu + 100 = 1400 ([[tunnel]] in the config)",
			Lower:    1180, LowerOK: true,
			Short: 1180, AtNeed: 1300, AllNeed: true, Tiny: 0,
			MSS4: 1140, MSS6: 1120, MSSOK: true,
			ClampWhy: "1280 − 100 overhead − 40",
		}},
		{"fixed", Spec{Kind: Other, OuterMTU: 1420, Overhead: 100}, outputs{
			Need4: 1420, Need6: 1420,
			Reason:   "fixed: needs an outer mtu of 1420 (the config)",
			Describe: "other: outer ≥ 1420 (the config)",
			LowerWhy: "it needs an outer mtu of 1420 whatever its own (the config)",
			AtNeed:   1300, AllNeed: true,
			MSSWhy: "it needs an outer mtu of 1420 whatever its packets' size (the config)",
		}},
	} {
		if got := outputsOf(tt.spec, tt.name); got != tt.want {
			t.Errorf("%+v:\n got %+v\nwant %+v", tt.spec, got, tt.want)
		}
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds {
		if got, err := ParseKind(string(k)); got != k || err != nil {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	if got, err := ParseKind("WireGuard"); got != "" || err == nil || !strings.Contains(err.Error(), `"WireGuard"`) {
		t.Errorf(`ParseKind("WireGuard") = %q, %v; want an error naming it (kinds are lower case)`, got, err)
	}
}

func TestInferSpec(t *testing.T) {
	for _, tt := range []struct {
		name, linkKind string
		want           Spec
	}{
		{"zt0", "wireguard", Spec{Kind: WireGuard, Source: "netlink kind wireguard"}},
		{"zt3jnkd6ic", "tun", Spec{Kind: ZeroTier, Source: "a ZeroTier name"}},
		{"tailscale0", "tun", Spec{Kind: WireGuard, Source: "a WireGuard-family name"}},
	} {
		if got := Infer(tt.name, tt.linkKind); got != tt.want {
			t.Errorf("Infer(%s, %s) = %+v, want %+v", tt.name, tt.linkKind, got, tt.want)
		}
	}
}
