package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/detect"
	"github.com/wslmtu/wslmtu/internal/netwatch"
	"github.com/wslmtu/wslmtu/internal/testenv/netnstest"
)

// BenchmarkModelRouteEvent is the agent's work for one route event of a
// table it does not act on (add, then delete), with 10k or 100k routes
// already in other tables: flat in their number. MB-model is the heap the
// model holds for them (after a GC), MB-full what keeping the routes as
// the agent used to (detect.Route values) holds for comparison. The whole
// agent process, with the same routes in a real kernel, is measured by
// BenchmarkAgentRoutes in cmd/wslmtu.
// Run: go test ./agent -run '^$' -bench ModelRouteEvent -benchmem
func BenchmarkModelRouteEvent(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("others=%dk", n/1000), func(b *testing.B) {
			var a *agent
			heap := heapOf(func() {
				a = &agent{kernel: newModel(nil, detect.Sources{})}
				a.kernel.link(detect.Link{Name: "eth0", Index: 2, Up: true}, false)
				for i := 0; i < n; i++ {
					a.onEvent(netwatch.Event{Route: otherRoute(i)})
				}
			})
			var routes []detect.Route
			full := heapOf(func() {
				for i := 0; i < n; i++ {
					routes = append(routes, *otherRoute(i))
				}
			})
			runtime.KeepAlive(routes)
			routes = nil
			if got := len(a.kernel.snapshot().OtherTables); got != 10 {
				b.Fatalf("%d other tables, want 10", got)
			}
			events := [2]netwatch.Event{{Route: otherRoute(n)}, {Route: otherRoute(n), Gone: true}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				a.onEvent(events[i%2])
			}
			b.StopTimer()
			b.ReportMetric(float64(heap)/1e6, "MB-model")
			b.ReportMetric(float64(full)/1e6, "MB-full")
			if len(a.pending) != 0 {
				b.Fatal("a route of another table queued a reconcile")
			}
			runtime.KeepAlive(a)
		})
	}
}

// otherRoute is the i-th of a full table's routes, spread over ten tables.
func otherRoute(i int) *detect.Route {
	return &detect.Route{Family: 4, Table: 100 + i%10, Dst: fmt.Sprintf("10.%d.%d.0/24", i>>8&255, i&255+i>>16),
		Gw: "172.28.0.1", LinkIndex: 2, Metric: i >> 16}
}

// heapOf is the heap still held after build ran (and the GC).
func heapOf(build func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// BenchmarkModelReadAll is a full read (at start, and after a netlink
// overflow, which a fast burst of routes causes) of a kernel holding 100k
// routes in ten other tables: one dump read a message at a time, nothing of
// those routes kept but their hashes. MB-model is the heap held after it.
// Run: go test ./agent -run '^$' -bench ModelReadAll -benchmem
func BenchmarkModelReadAll(b *testing.B) {
	const n = 100_000
	ns := netnstest.NewWSL(b, 1280, 1280)
	batch := filepath.Join(b.TempDir(), "routes")
	var lines strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&lines, "route add 10.%d.%d.0/24 via 172.28.0.1 dev eth0 table %d metric %d\n", i>>8&255, i&255, 100+i%10, i>>16)
	}
	if err := os.WriteFile(batch, []byte(lines.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", ns.Name, "-batch", batch).CombinedOutput(); err != nil {
		b.Fatalf("ip -batch: %v\n%s", err, out)
	}
	nsn := netnstest.NetNS(b, ns)
	m := newModel(&detect.Kernel{H: ns.Handle}, detect.Sources{})
	m.dump = netwatch.Netlink{NS: nsn}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.readAll(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	m = newModel(&detect.Kernel{H: ns.Handle}, detect.Sources{})
	m.dump = netwatch.Netlink{NS: nsn}
	heap := heapOf(func() {
		if err := m.readAll(); err != nil {
			b.Fatal(err)
		}
	})
	if got := len(m.snapshot().OtherTables); got != 10 {
		b.Fatalf("%d other tables, want 10", got)
	}
	b.ReportMetric(float64(heap)/1e6, "MB-model")
	runtime.KeepAlive(m)
}
