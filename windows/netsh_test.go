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
