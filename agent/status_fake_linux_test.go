package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/agentstatus"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/testenv/fakekernel"
)

// A route repair is shown in status as the change it was (the route and
// its mtu), not as an interface's "mtu 0 → 0".
func TestStatusShowsARouteRepairAsItWas(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	a := startFake(t, k, "")
	// WSL sends the default route again without its mtu (mirrored mode's
	// refresh does).
	k.ReplaceRoute(detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2})
	eventually(t, "the route's mtu put back", func() bool {
		r, ok := k.Route(detect.Route{Family: 4, Table: detect.MainTable, Dst: "default", Gw: "172.28.0.1", LinkIndex: 2})
		return ok && r.MTU == 1280
	})
	var text string
	eventually(t, "the route repair in the counters file", func() bool {
		st, err := agentstatus.Read(a.dir)
		text = st.String()
		return err == nil && st.LastRepair != nil && strings.HasPrefix(st.LastRepair.Cause, "route ")
	})
	want := "last repair: route default via 172.28.0.1 dev eth0: mtu 1280 ("
	if !strings.Contains(text, want) || strings.Contains(text, "mtu 0 → 0") {
		t.Errorf("status says:\n%s\nwant %q", text, want)
	}
}

// statusLog records the agent's STATUS= texts.
type statusLog struct {
	mu   sync.Mutex
	last string
}

func (s *statusLog) notify(state string) {
	if text, ok := strings.CutPrefix(state, "STATUS="); ok {
		s.mu.Lock()
		s.last = text
		s.mu.Unlock()
	}
}

func (s *statusLog) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// The health check reads the host afresh, every HealthInterval too: a
// change the agent never heard of (its events held back) turns the metrics
// and the unit's status text unhealthy with the words status uses; when the
// agent hears of it and repairs, both say healthy again.
func TestFakeAgentHealthIsAFreshRead(t *testing.T) {
	k := fakekernel.NewWSL(1280, 1280)
	prom := filepath.Join(t.TempDir(), "wslmtu.prom")
	var status statusLog
	a := startFake(t, k, "metrics_file = \""+prom+"\"\n", func(o *Options) {
		o.HealthInterval = 20 * time.Millisecond
		o.Notify = status.notify
	})
	healthy := func() float64 {
		data, _ := os.ReadFile(prom)
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "wslmtu_healthy "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return -1
	}
	eventually(t, "healthy at start", func() bool { return healthy() == 1 && strings.HasPrefix(status.get(), "healthy;") })

	k.Writes()
	release := k.HoldEvents()
	k.Reset("eth0", 1280)
	cfg, _ := config.Load(a.cfg)
	r, _ := fix.Host{Sources: k.Sources("nat"), Links: k, Kernel: k, Store: fix.Store{Dir: a.dir}}.Plan(cfg)
	want := r.Health().String()
	if !strings.HasPrefix(want, "unhealthy: ") {
		t.Fatalf("status says %q of eth0 at 1280", want)
	}
	eventually(t, "unhealthy after a change the agent did not hear of", func() bool {
		return healthy() == 0 && strings.HasPrefix(status.get(), want+";")
	})
	if w := k.Writes(); len(w) != 0 {
		t.Errorf("the health check changed the host: %q", w)
	}

	release()
	eventually(t, "eth0 repaired", func() bool { return k.MTU("eth0") == 1360 })
	eventually(t, "healthy again", func() bool { return healthy() == 1 && strings.HasPrefix(status.get(), "healthy;") })
}
