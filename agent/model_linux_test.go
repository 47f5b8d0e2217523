package agent

import (
	"testing"

	"github.com/wslmtu/wslmtu/detect"
)

// A new WireGuard link appears down, before its port is set or its UAPI
// socket exists: wgctrl cannot read it yet. Once the link is up the model
// must ask again, or the tunnel stays unidentified and the tunnel scope
// falls back to raising eth0 for everything (found in the lab).
func TestModelAsksWireGuardAgainWhenTheLinkComesUp(t *testing.T) {
	dev, readable, calls := detect.WireGuardDevice{}, false, 0
	m := newModel(nil, detect.Sources{WireGuard: func(string) (detect.WireGuardDevice, bool) {
		calls++
		return dev, readable
	}})
	m.link(detect.Link{Name: "wg0", Index: 7, Kind: "tun"}, false)
	if _, ok := m.wireGuard("wg0"); ok {
		t.Fatal("an unreadable device read as ok")
	}
	dev, readable = detect.WireGuardDevice{ListenPort: 51820}, true
	m.link(detect.Link{Name: "wg0", Index: 7, Kind: "tun", Up: true}, false)
	if got, ok := m.wireGuard("wg0"); !ok || got.ListenPort != 51820 {
		t.Errorf("after the link came up: %+v, %v; want port 51820", got, ok)
	}
	// While it stays up, the answer is cached: a repair costs no wgctrl round trip.
	m.link(detect.Link{Name: "wg0", Index: 7, Kind: "tun", Up: true, MTU: 1400}, false)
	m.wireGuard("wg0")
	if calls != 2 {
		t.Errorf("wgctrl asked %d times, want 2", calls)
	}
}
