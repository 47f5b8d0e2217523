package windows

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestWindowsFormatStatus(t *testing.T) {
	r := hostFake(t)
	h, err := Status(context.Background(), r, r)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	h.Format(&b)
	got := b.String()
	want := `Connected Windows adapters:
  ipv4  Ethernet                             MTU 1500
  ipv4  Tailscale                            MTU 1280  <- sets eth0
  ipv4  vEthernet (WSL (Hyper-V firewall))   MTU 1500  (WSL's own adapter; it counts too)
  ipv6  Ethernet                             MTU 1500
  ipv6  Tailscale                            MTU 1280  <- sets eth0
  ipv6  vEthernet (WSL (Hyper-V firewall))   MTU 1500  (WSL's own adapter; it counts too)
eth0: Tailscale (MTU 1280) is the smallest connected adapter: WSL copies it into eth0 (NAT mode; mirrored mode works differently)
      a tunnel inside WSL crosses it unfragmented up to MTU 1200
Distros:
  * Ubuntu-24.04         WSL2  running   agent: unhealthy
    docker-desktop       WSL2  stopped   agent: not-running (not queried: running a command would start the distro)
    Debian               WSL2  running   agent: not-installed (wslmtu is not installed in this distro)
    Legacy               WSL1  stopped   agent: wsl1 (WSL1 shares the Windows network stack: no eth0 MTU to manage)
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatDrops(t *testing.T) {
	var slept time.Duration
	rep, err := Drops(context.Background(), dropsFake(t), dropsOpts(t, &slept))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.Format(&b)
	for _, want := range []string{
		"3 of 4 dropped packets are IP fragments",
		"       3  Invalid Packet\n",
		"       3  Hyper-V Virtual Ethernet Adapter\n",
		"e.g. 00-15-5D-3A-8C-21 > 00-15-5D-CE-B0-19, ethertype IPv4 (0x0800), length 1294: 172.28.144.2.41641 > 203.0.113.7.41641: UDP, bad length 1312 > 1252",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
}
