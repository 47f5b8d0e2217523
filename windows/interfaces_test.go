package windows

import (
	"slices"
	"strings"
	"testing"
)

// Rows as GetIpInterfaceTable gives them: one per interface and family, the
// loopback connected at MTU 4294967295 in both.
func lo(family string) IPInterface {
	return IPInterface{Name: "Loopback Pseudo-Interface 1", Index: 1, Family: family, MTU: 4294967295, Connected: true, Loopback: true}
}

func row(index uint32, name, family string, mtu uint32, connected bool) IPInterface {
	return IPInterface{Name: name, Index: index, Family: family, MTU: mtu, Connected: connected}
}

// tailscaleHost is the host of the netsh_*_tailscale.txt fixtures.
func tailscaleHost() []IPInterface {
	return []IPInterface{
		lo("ipv4"),
		row(7, "Ethernet", "ipv4", 1500, true),
		row(12, "Wi-Fi", "ipv4", 1500, false),
		row(21, "Tailscale", "ipv4", 1280, true),
		row(45, "vEthernet (WSL (Hyper-V firewall))", "ipv4", 1500, true),
		lo("ipv6"),
		row(7, "Ethernet", "ipv6", 1500, true),
		row(12, "Wi-Fi", "ipv6", 1500, false),
		row(14, "Teredo Tunneling Pseudo-Interface", "ipv6", 1280, false),
		row(21, "Tailscale", "ipv6", 1280, true),
		row(45, "vEthernet (WSL (Hyper-V firewall))", "ipv6", 1500, true),
	}
}

func TestWindowsMinimumConnected(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rows    []IPInterface
		adapter string // "" when an error is expected
		family  string
		mtu     uint32
		reason  string // the whole sentence, or the error's
	}{
		{"tailscale for windows", tailscaleHost(), "Tailscale", "ipv4", 1280,
			"Tailscale (MTU 1280) is the smallest connected adapter: WSL copies it into eth0"},
		{"vEthernet (WSL) lowered below the uplink (a common forum tip)", []IPInterface{
			lo("ipv4"),
			row(7, "Ethernet", "ipv4", 1500, true),
			row(45, "vEthernet (WSL)", "ipv4", 1400, true),
		}, "vEthernet (WSL)", "ipv4", 1400,
			"vEthernet (WSL) (MTU 1400) is the smallest connected adapter: WSL copies it into eth0; " +
				"it is WSL's own adapter, which WSL counts too, so a lowered vEthernet (WSL) MTU lowers eth0"},
		{"a VPN at 1280", []IPInterface{
			lo("ipv4"),
			row(7, "Ethernet", "ipv4", 1500, true),
			row(30, "Cisco AnyConnect", "ipv4", 1280, true),
			row(45, "vEthernet (WSL)", "ipv4", 1500, true),
		}, "Cisco AnyConnect", "ipv4", 1280,
			"Cisco AnyConnect (MTU 1280) is the smallest connected adapter: WSL copies it into eth0"},
		{"disconnected adapters do not count, however small", []IPInterface{
			lo("ipv4"),
			row(7, "Ethernet", "ipv4", 1500, true),
			row(12, "Wi-Fi", "ipv4", 576, false),
			row(14, "Teredo Tunneling Pseudo-Interface", "ipv6", 1280, false),
			row(30, "Cisco AnyConnect", "ipv4", 1280, false),
		}, "Ethernet", "ipv4", 1500,
			"Ethernet (MTU 1500) is the only connected adapter: WSL copies it into eth0"},
		{"the IPv6 row is lower than the IPv4 row", []IPInterface{
			lo("ipv4"),
			row(7, "Ethernet", "ipv4", 1500, true),
			row(30, "Cisco AnyConnect", "ipv4", 1400, true),
			lo("ipv6"),
			row(7, "Ethernet", "ipv6", 1500, true),
			row(30, "Cisco AnyConnect", "ipv6", 1300, true),
		}, "Cisco AnyConnect", "ipv6", 1300,
			"Cisco AnyConnect (IPv6 MTU 1300; its IPv4 MTU is 1400) is the smallest connected adapter: WSL copies it into eth0"},
		{"an IPv6-only adapter", []IPInterface{
			row(7, "Ethernet", "ipv4", 1500, true),
			row(7, "Ethernet", "ipv6", 1500, true),
			row(40, "OpenVPN Data Channel Offload", "ipv6", 1420, true),
		}, "OpenVPN Data Channel Offload", "ipv6", 1420,
			"OpenVPN Data Channel Offload (MTU 1420) is the smallest connected adapter: WSL copies it into eth0"},
		{"no floor: below 1280 is copied as it is", []IPInterface{
			row(7, "Ethernet", "ipv4", 1500, true),
			row(30, "Check Point VPN", "ipv4", 1200, true),
		}, "Check Point VPN", "ipv4", 1200,
			"Check Point VPN (MTU 1200) is the smallest connected adapter: WSL copies it into eth0"},
		{"no cap: jumbo frames are copied as they are", []IPInterface{
			lo("ipv4"),
			row(7, "Ethernet", "ipv4", 9000, true),
			row(45, "vEthernet (WSL)", "ipv4", 9000, true),
		}, "Ethernet", "ipv4", 9000,
			"Ethernet and vEthernet (WSL) (MTU 9000) are the smallest connected adapters: WSL copies 9000 into eth0"},
		{"a tie names every adapter at the value, the real one first", []IPInterface{
			row(45, "vEthernet (WSL)", "ipv4", 1280, true),
			row(30, "Tailscale", "ipv4", 1280, true),
			row(21, "Cisco AnyConnect", "ipv6", 1280, true),
			row(7, "Ethernet", "ipv4", 1500, true),
		}, "Tailscale", "ipv4", 1280,
			"Tailscale, Cisco AnyConnect and vEthernet (WSL) (MTU 1280) are the smallest connected adapters: WSL copies 1280 into eth0"},
		{"offline: only WSL's own adapter besides the loopback", []IPInterface{
			lo("ipv4"),
			row(12, "Wi-Fi", "ipv4", 1500, false),
			row(45, "vEthernet (WSL)", "ipv4", 1500, true),
		}, "vEthernet (WSL)", "ipv4", 1500,
			"vEthernet (WSL) (MTU 1500) is the only connected adapter: WSL copies it into eth0"},
		{"the loopback counts but never wins against a real adapter", []IPInterface{
			lo("ipv4"), lo("ipv6"),
			row(7, "Ethernet", "ipv4", 1500, true),
		}, "Ethernet", "ipv4", 1500,
			"Ethernet (MTU 1500) is the only connected adapter: WSL copies it into eth0"},
		{"only the loopback is connected", []IPInterface{
			lo("ipv4"), lo("ipv6"),
			row(12, "Wi-Fi", "ipv4", 1500, false),
		}, "", "", 0,
			"only Loopback Pseudo-Interface 1 is connected (MTU 4294967295): WSL offers eth0 that value, more than Linux accepts, so no adapter sets eth0 now"},
		{"nothing connected", []IPInterface{row(12, "Wi-Fi", "ipv4", 1500, false)}, "", "", 0,
			"no connected IP interface on Windows: WSL pushes no MTU and eth0 keeps the one it has"},
		{"an empty table", nil, "", "", 0,
			"no connected IP interface on Windows: WSL pushes no MTU and eth0 keeps the one it has"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The answer must not depend on the order Windows lists rows in.
			for _, rows := range orders(tc.rows) {
				c, err := MinimumConnected(rows)
				if tc.adapter == "" {
					if err == nil || err.Error() != tc.reason {
						t.Fatalf("err %v, want %q (chose %+v)", err, tc.reason, c.Adapter)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.Adapter.Name != tc.adapter || c.Adapter.Family != tc.family || c.MTU != tc.mtu || c.Adapter.MTU != tc.mtu {
					t.Errorf("chose %s %s, eth0 %d; want %s %s, %d", c.Adapter.Name, c.Adapter.Family, c.MTU, tc.adapter, tc.family, tc.mtu)
				}
				if c.Reason != tc.reason {
					t.Errorf("reason\n %q\nwant\n %q", c.Reason, tc.reason)
				}
				for _, r := range c.Considered {
					if !r.Connected || r.MTU < c.MTU {
						t.Errorf("considered %+v with eth0 at %d", r, c.MTU)
					}
				}
			}
		})
	}
}

// orders is rows as given, reversed, and rotated by one.
func orders(rows []IPInterface) [][]IPInterface {
	rev := slices.Clone(rows)
	slices.Reverse(rev)
	rot := slices.Clone(rows)
	if len(rot) > 1 {
		rot = append(rot[1:], rot[0])
	}
	return [][]IPInterface{rows, rev, rot}
}

// The Linux side reads the same host through netsh; both readings must name
// the same adapter for the same reason.
func TestWindowsChooseOuterAgreesWithTheTable(t *testing.T) {
	v4, err := ParseSubinterfaces(fixture(t, "netsh_ipv4_tailscale.txt"))
	if err != nil {
		t.Fatal(err)
	}
	v6, err := ParseSubinterfaces(fixture(t, "netsh_ipv6_tailscale.txt"))
	if err != nil {
		t.Fatal(err)
	}
	fromNetsh, err := ChooseOuter(tagged(v4, "ipv4"), tagged(v6, "ipv6"))
	if err != nil {
		t.Fatal(err)
	}
	fromTable, err := MinimumConnected(tailscaleHost())
	if err != nil {
		t.Fatal(err)
	}
	if fromNetsh.Adapter.Name != fromTable.Adapter.Name || fromNetsh.MTU != fromTable.MTU || fromNetsh.Reason != fromTable.Reason {
		t.Errorf("netsh: %s %d %q\ntable: %s %d %q", fromNetsh.Adapter.Name, fromNetsh.MTU, fromNetsh.Reason,
			fromTable.Adapter.Name, fromTable.MTU, fromTable.Reason)
	}
	if fromNetsh.TunnelMTUFits() != 1200 {
		t.Errorf("TunnelMTUFits %d", fromNetsh.TunnelMTUFits())
	}

	// netsh's offline host: vEthernet (WSL) is connected, so it sets eth0.
	off, _ := ParseSubinterfaces(fixture(t, "netsh_ipv4_offline.txt"))
	c, err := ChooseOuter(tagged(off, "ipv4"))
	if err != nil || c.Adapter.Name != "vEthernet (WSL)" || !strings.Contains(c.Reason, "only connected adapter") {
		t.Errorf("offline: %+v %v", c, err)
	}
	de, _ := ParseSubinterfaces(fixture(t, "netsh_ipv4_vpn_de.txt"))
	if c, err := ChooseOuter(tagged(de, "ipv4")); err != nil || c.Adapter.Name != "Cisco AnyConnect" || c.MTU != 1300 {
		t.Errorf("VPN: %+v %v", c, err)
	}
}

func tagged(list []Adapter, family string) []Adapter {
	for i := range list {
		list[i].Family = family
	}
	return list
}
