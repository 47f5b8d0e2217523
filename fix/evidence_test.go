package fix

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// routesOf lists the fake kernel's routes of one table as text.
func routesOf(t *testing.T, k *fakekernel.Kernel, table int) string {
	t.Helper()
	snap, err := detect.Read(k)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range snap.State().Routes {
		if r.Table == table && r.IsDefault() {
			s := r.String()
			if r.MTU != 0 {
				s += " mtu " + itoa(r.MTU)
			}
			out = append(out, s)
		}
	}
	return strings.Join(out, "\n")
}

// WSL (consomme) changes the gateway: RTM_DELROUTE of the default route via
// .1, then an add via .9. Our table's copy via .1 goes before the copy via
// .9 comes in (they share the kernel's key), so no plan fails with "file
// exists", and the new main route gets its mtu.
func TestGatewayChangeCannotJam(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	w := newWorld(t, k, "consomme", config.Default())
	w.apply()
	old := detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}
	if err := k.DeleteRoute(old); err != nil {
		t.Fatal(err)
	}
	if err := k.AddRoute(detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.9", LinkIndex: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // every later plan too
		if _, _, err := Apply(w.plan(), w.record(), k, w.store); err != nil {
			t.Fatalf("plan %d after the gateway change: %v", i, err)
		}
	}
	if got, want := routesOf(t, k, detect.MainTable), "default via 172.28.0.9 dev eth0 mtu 1280"; got != want {
		t.Errorf("main table:\n%s\nwant\n%s", got, want)
	}
	if got, want := routesOf(t, k, 5200), "default via 172.28.0.9 dev eth0 table 5200"; got != want {
		t.Errorf("table 5200:\n%s\nwant\n%s", got, want)
	}
	if p := w.plan(); !p.Empty() {
		t.Errorf("not settled:\n%s", p)
	}
}

// Two IPv4 default routes with one metric (`ip route append`): the kernel
// uses the first; only it gets the mtu and a copy, and the plan says why.
func TestAppendedDefaultRouteIsExplained(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	k.AppendRoute(detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.9", LinkIndex: 2})
	w := newWorld(t, k, "nat", config.Default())
	p := w.plan()
	if !strings.Contains(strings.Join(p.Notes, "\n"), "route default via 172.28.0.9 dev eth0 has the metric of default via 172.28.0.1 dev eth0, which the kernel uses first") {
		t.Errorf("notes %q", p.Notes)
	}
	for i := range 2 {
		if _, _, err := Apply(w.plan(), w.record(), k, w.store); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	if got, want := routesOf(t, k, 5200), "default via 172.28.0.1 dev eth0 table 5200"; got != want {
		t.Errorf("table 5200:\n%s\nwant\n%s", got, want)
	}
	if got, want := routesOf(t, k, detect.MainTable), "default via 172.28.0.1 dev eth0 mtu 1280\ndefault via 172.28.0.9 dev eth0"; got != want {
		t.Errorf("main table:\n%s\nwant\n%s", got, want)
	}
}

// A default route that already carries an mtu: equal to what Windows
// chose, it is what is needed (said so) and the rules still go in; above
// it, it is capped like any other and revert puts it back; below it, it is
// kept.
func TestDefaultRouteWithItsOwnMTU(t *testing.T) {
	for _, tc := range []struct {
		own       int
		wantRoute string
		note      string
	}{
		{1280, "default via 172.28.0.1 dev eth0 mtu 1280", "already has mtu 1280, what Windows chose: kept"},
		{1500, "default via 172.28.0.1 dev eth0 mtu 1280", ""},
		{1200, "default via 172.28.0.1 dev eth0 mtu 1200", "has an mtu of its own (1200), below what Windows chose (1280): kept"},
	} {
		t.Run(itoa(tc.own), func(t *testing.T) {
			k := fakekernel.NewWSL(1280, 1280)
			r := detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2}
			k.ReplaceRoute(withMTU(r, tc.own))
			before := dump(t, k)
			w := newWorld(t, k, "nat", config.Default())
			p := w.plan()
			if tc.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), tc.note) {
				t.Errorf("notes %q, want %q", p.Notes, tc.note)
			}
			if len(p.Rules) != 2 {
				t.Errorf("the tunnel still needs its rules:\n%s", p)
			}
			w.apply()
			if got := routesOf(t, k, detect.MainTable); got != tc.wantRoute {
				t.Errorf("main table: %s, want %s", got, tc.wantRoute)
			}
			if got := routesOf(t, k, 5200); got != "default via 172.28.0.1 dev eth0 table 5200" {
				t.Errorf("table 5200: %q", got)
			}
			if k.MTU("eth0") != 1360 {
				t.Errorf("eth0 %d", k.MTU("eth0"))
			}
			w.revert()
			if after := dump(t, k); after != before {
				t.Errorf("revert left\n%s\nwant\n%s", after, before)
			}
		})
	}
}

func withMTU(r detect.Route, mtu int) detect.Route { r.MTU = mtu; return r }

// tailscaled's own WSL fix (eth0 1280 → 1360 at its start) is recognised
// whether it ran before wslmtu or while wslmtu runs: 1280 is what Windows
// chose, every other packet keeps it, and revert puts 1280 back.
func TestTailscaledFixIsNotWhatWindowsChose(t *testing.T) {
	t.Run("tailscaled first", func(t *testing.T) {
		k := fakekernel.NewWSL(1360, 1280)
		w := newWorld(t, k, "nat", config.Default())
		p := w.plan()
		if !strings.Contains(strings.Join(p.Notes, "\n"), "eth0 1360 is tailscaled's own WSL fix") {
			t.Errorf("notes %q", p.Notes)
		}
		if p.WindowsMTU != 1280 {
			t.Errorf("what Windows chose: %d, want 1280", p.WindowsMTU)
		}
		w.apply()
		if got := routesOf(t, k, detect.MainTable); got != "default via 172.28.0.1 dev eth0 mtu 1280" {
			t.Errorf("main table: %s", got)
		}
		if rec := w.record(); rec.Links["eth0"] != (LinkRecord{Before: 1280, Wrote: 1360, SetBy: "tailscaled"}) {
			t.Errorf("record %+v", rec.Links)
		}
		if p := w.plan(); !p.Empty() {
			t.Errorf("not settled:\n%s", p)
		}
		w.revert()
		if k.MTU("eth0") != 1280 {
			t.Errorf("revert left eth0 at %d, want what Windows chose (1280)", k.MTU("eth0"))
		}
	})
	t.Run("tailscaled started while wslmtu runs", func(t *testing.T) {
		k := fakekernel.NewWSLUnmarked(1280, 1280)
		k.DeleteLink("tailscale0")
		w := newWorld(t, k, "nat", config.Default())
		w.apply()
		// tailscaled: creates tailscale0 (down), raises eth0, comes up, adds its rules.
		k.AddLink(detect.Link{Name: "tailscale0", MTU: 1280, Kind: "tun"})
		k.Reset("eth0", 1360)
		w.apply()
		k.DeleteLink("tailscale0")
		k.AddLink(detect.Link{Name: "tailscale0", MTU: 1280, Kind: "tun", Up: true, IPv6Addrs: 1})
		k.AddTailscaledRules()
		w.apply()
		if got := routesOf(t, k, detect.MainTable); got != "default via 172.28.0.1 dev eth0 mtu 1280" {
			t.Errorf("main table: %s", got)
		}
		if k.MTU("eth0") != 1360 {
			t.Errorf("eth0 %d", k.MTU("eth0"))
		}
		w.revert()
		if k.MTU("eth0") != 1280 {
			t.Errorf("revert left eth0 at %d, want 1280", k.MTU("eth0"))
		}
	})
	t.Run("mtu_strategy off leaves it alone", func(t *testing.T) {
		k := fakekernel.NewWSL(1360, 1280)
		cfg := config.Default()
		cfg.MTUStrategy = config.StrategyOff
		w := newWorld(t, k, "nat", cfg)
		if p := w.plan(); p.Adopt != nil || !p.Empty() {
			t.Errorf("plan with strategy off:\n%s", p)
		}
	})
}

// A record from the previous boot is never the baseline: boot 1 raised eth0
// 1280 → 1500 for a 1420 tunnel; boot 2 comes up at 1500 with no VPN on
// Windows. Nothing is capped at 1280, and revert does not lower eth0.
func TestRecordFromAnEarlierBoot(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1420)
	w := newWorld(t, k, "nat", config.Default())
	st := observe(t, k, "nat", w.cfg)
	st.Env.BootID = "boot-1"
	if _, _, err := Apply(NewPlan(st, w.record(), w.cfg), w.record(), k, w.store); err != nil {
		t.Fatal(err)
	}
	if rec := w.record(); rec.BootID != "boot-1" || rec.Links["eth0"].Before != 1280 {
		t.Fatalf("boot 1 record %+v", rec)
	}
	// Boot 2: a new kernel at 1500, nothing of ours in it.
	k2 := fakekernel.NewWSL(1500, 1420)
	st2 := observe(t, k2, "nat", w.cfg)
	st2.Env.BootID = "boot-2"
	p := NewPlan(st2, w.record(), w.cfg)
	if !strings.Contains(p.StaleRecord, "from an earlier boot (boot id boot-1, now boot-2)") {
		t.Errorf("stale record: %q", p.StaleRecord)
	}
	if p.WindowsMTU != 0 || !p.Empty() {
		t.Errorf("boot 2 plan should take 1500 as Windows' value and do nothing:\n%s", p)
	}
	rec, _, err := Apply(p, w.record(), k2, w.store)
	if err != nil {
		t.Fatal(err)
	}
	if rec.BootID != "boot-2" || len(rec.Links) != 0 {
		t.Errorf("boot 2 record %+v", rec)
	}
	// revert through the host: the record of boot 1 puts nothing back.
	k3 := fakekernel.NewWSL(1500, 1420)
	h := hostOn(t, k3, "nat")
	h.Store = w.store
	if err := h.Store.SaveRecord(Record{BootID: "boot-1", Links: map[string]LinkRecord{"eth0": {Before: 1280, Wrote: 1500}}}); err != nil {
		t.Fatal(err)
	}
	h.Sources.Root.(fstest.MapFS)["proc/sys/kernel/random/boot_id"] = &fstest.MapFile{Data: []byte("boot-3\n")}
	done, _, err := h.Revert()
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || !strings.Contains(done[0].String(), "from an earlier boot (boot id boot-1, now boot-3)") {
		t.Errorf("revert said %v", done)
	}
	if k3.MTU("eth0") != 1500 {
		t.Errorf("revert lowered eth0 to %d", k3.MTU("eth0"))
	}
}
