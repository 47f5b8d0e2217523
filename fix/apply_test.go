package fix

import (
	"fmt"
	"strings"
	"testing"
)

// fakeLinks records MTU writes; the kernel-facing code has its own root test.
type fakeLinks struct {
	mtu    map[string]int
	writes int
}

func (f *fakeLinks) MTU(name string) (int, error) {
	m, ok := f.mtu[name]
	if !ok {
		return 0, fmt.Errorf("interface %q not found", name)
	}
	return m, nil
}

func (f *fakeLinks) SetMTU(name string, mtu int) error {
	f.mtu[name] = mtu
	f.writes++
	return nil
}

func TestApplyRecordsFirstOriginalAndRevertRestoresIt(t *testing.T) {
	links := &fakeLinks{mtu: map[string]int{"eth0": 1280, "tailscale0": 1280}}
	store := Store{Dir: t.TempDir()}
	plan := Plan{Actions: []Action{{Link: "eth0", From: 1280, To: 1360}}}
	if _, err := Apply(plan, links, store); err != nil {
		t.Fatal(err)
	}
	// A second plan after WSL pushed another MTU must not overwrite the original.
	links.mtu["eth0"] = 1300
	if _, err := Apply(Plan{Actions: []Action{{Link: "eth0", From: 1300, To: 1480}}}, links, store); err != nil {
		t.Fatal(err)
	}
	rec, _ := store.LoadRecord()
	if rec.MTU["eth0"] != 1280 {
		t.Fatalf("record = %v, want eth0 1280", rec.MTU)
	}
	before := links.writes
	changes, err := Apply(Plan{Actions: []Action{{Link: "eth0", From: 1480, To: 1480}}}, links, store)
	if err != nil || links.writes != before || changes[0].Wrote {
		t.Fatalf("an equal MTU was written again: %v %v", changes, err)
	}
	reverted, err := Revert(links, store)
	if err != nil || len(reverted) != 1 || links.mtu["eth0"] != 1280 {
		t.Fatalf("revert: %v %v, eth0 %d", reverted, err, links.mtu["eth0"])
	}
	if rec, _ := store.LoadRecord(); len(rec.MTU) != 0 {
		t.Errorf("record not cleared: %v", rec.MTU)
	}
}

func TestRevertForgetsVanishedLinks(t *testing.T) {
	links := &fakeLinks{mtu: map[string]int{"tailscale0": 1280}}
	store := Store{Dir: t.TempDir()}
	if _, err := Apply(Plan{Actions: []Action{{Link: "tailscale0", From: 1280, To: 1200}}}, links, store); err != nil {
		t.Fatal(err)
	}
	delete(links.mtu, "tailscale0")
	reverted, err := Revert(links, store)
	if err != nil || len(reverted) != 1 || !reverted[0].Gone {
		t.Fatalf("reverted = %v, %v", reverted, err)
	}
}

func TestRevertOfALoweredTunnelSaysIPv6IsGone(t *testing.T) {
	r := Reverted{Link: "tailscale0", From: 1200, To: 1280}
	if !strings.Contains(r.String(), "lost its IPv6 addresses") {
		t.Errorf("revert line does not warn: %s", r)
	}
	if r := (Reverted{Link: "eth0", From: 1360, To: 1280}); strings.Contains(r.String(), "IPv6") {
		t.Errorf("revert of a raised eth0 warns about IPv6: %s", r)
	}
}
