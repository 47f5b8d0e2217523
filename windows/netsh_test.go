package windows

import (
	"strings"
	"testing"
)

func TestParseSubinterfacesIPv4(t *testing.T) {
	got, err := ParseSubinterfaces(fixture(t, "netsh_ipv4_tailscale.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Adapter{
		{Name: "Loopback Pseudo-Interface 1", MTU: 4294967295, MediaSenseState: 1, BytesOut: 49335},
		{Name: "Ethernet", MTU: 1500, MediaSenseState: 1, BytesIn: 8423117904, BytesOut: 611352012},
		{Name: "Wi-Fi", MTU: 1500, MediaSenseState: 5},
		{Name: "Local Area Connection* 1", MTU: 1500, MediaSenseState: 5},
		{Name: "Local Area Connection* 10", MTU: 1500, MediaSenseState: 5},
		{Name: "Tailscale", MTU: 1280, MediaSenseState: 1, BytesIn: 19283746, BytesOut: 7364512},
		{Name: "vEthernet (WSL (Hyper-V firewall))", MTU: 1500, MediaSenseState: 1, BytesIn: 402817, BytesOut: 18837201},
		{Name: "Bluetooth Network Connection", MTU: 1500, MediaSenseState: 5},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d adapters, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseSubinterfacesLocalizedHeader(t *testing.T) {
	got, err := ParseSubinterfaces(fixture(t, "netsh_ipv4_vpn_de.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 || got[3].Name != "Cisco AnyConnect" || got[3].MTU != 1300 || !got[3].Connected() {
		t.Errorf("got %+v", got)
	}
}

func TestParseSubinterfacesErrors(t *testing.T) {
	for name, in := range map[string]string{
		"no table":      "The following command was not found: interface ipv4 show subinterfaces.\r\n",
		"short row":     "MTU X\r\n---  ---\r\n1500 1 2\r\n",
		"not a number":  "h\r\n------\r\n1500 one 2 3 Ethernet\r\n",
		"no name":       "h\r\n------\r\n1500 1 2 3\r\n",
		"mtu too large": "h\r\n------\r\n99999999999 1 2 3 Ethernet\r\n",
	} {
		if _, err := ParseSubinterfaces([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := ParseSubinterfaces([]byte("h\r\n------\r\n1500 one 2 3 Ethernet\r\n"))
	if err == nil || !strings.Contains(err.Error(), `"one"`) {
		t.Errorf("error should name the bad column: %v", err)
	}
}

func TestChooseOuter(t *testing.T) {
	v4, _ := ParseSubinterfaces(fixture(t, "netsh_ipv4_tailscale.txt"))
	v6, _ := ParseSubinterfaces(fixture(t, "netsh_ipv6_tailscale.txt"))
	c, err := ChooseOuter(v4, v6)
	if err != nil {
		t.Fatal(err)
	}
	if c.Adapter.Name != "Tailscale" || c.MTU != 1280 {
		t.Errorf("chose %+v", c.Adapter)
	}
	if want := "Tailscale (MTU 1280) is the smallest connected adapter: WSL copies it into eth0"; c.Reason != want {
		t.Errorf("reason %q, want %q", c.Reason, want)
	}
	if c.TunnelMTUFits() != 1200 {
		t.Errorf("TunnelMTUFits %d", c.TunnelMTUFits())
	}
	// Teredo (1280) is disconnected and must not win; nor loopback or vEthernet (WSL).
	for _, a := range c.Considered {
		if a.IsLoopback() || a.IsWSLAdapter() || !a.Connected() {
			t.Errorf("considered %+v", a)
		}
	}

	de, _ := ParseSubinterfaces(fixture(t, "netsh_ipv4_vpn_de.txt"))
	c, err = ChooseOuter(de)
	if err != nil || c.Adapter.Name != "Cisco AnyConnect" || c.MTU != 1300 {
		t.Errorf("VPN: %+v %v", c, err)
	}

	off, _ := ParseSubinterfaces(fixture(t, "netsh_ipv4_offline.txt"))
	if _, err := ChooseOuter(off); err == nil {
		t.Error("offline host: want an error, only loopback and vEthernet (WSL) are connected")
	}

	one := []Adapter{{Name: "Ethernet", MTU: 1500, MediaSenseState: 1}}
	c, _ = ChooseOuter(one, one) // same adapter in both families
	if !strings.Contains(c.Reason, "only connected adapter") {
		t.Errorf("reason %q", c.Reason)
	}
}
