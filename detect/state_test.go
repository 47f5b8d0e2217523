package detect

import (
	"net"
	"strings"
	"testing"

	"github.com/wslmtu/wslmtu/internal/config"
)

type fakeNetlink struct {
	links        []Link
	defaultIndex int
}

func (f fakeNetlink) Links() ([]Link, error)          { return f.links, nil }
func (f fakeNetlink) DefaultRouteIndex() (int, error) { return f.defaultIndex, nil }

func wslSources() Sources {
	return Sources{Root: kernelFS(wsl2Release, wsl2Version, "run/WSL/1_interop"), Getenv: envOf(nil)}
}

func TestObserveFindsOuterAndTunnels(t *testing.T) {
	nl := fakeNetlink{links: []Link{
		{Name: "lo", Index: 1, MTU: 65536},
		{Name: "eth0", Index: 2, MTU: 1280},
		{Name: "tailscale0", Index: 5, MTU: 1280, Up: true},
		{Name: "wg-work", Index: 6, MTU: 1420, Up: true},
		{Name: "wg-new", Index: 7, MTU: 1500}, // just created, MTU not set yet
		{Name: "docker0", Index: 4, MTU: 1500},
	}, defaultIndex: 2}
	st, err := Observe(wslSources(), nl, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if st.Outer == nil || st.Outer.Name != "eth0" {
		t.Fatalf("outer = %+v, want eth0", st.Outer)
	}
	var names []string
	for _, l := range st.Tunnels {
		names = append(names, l.Name)
	}
	if got := strings.Join(names, ","); got != "tailscale0,wg-work" {
		t.Errorf("tunnels = %s", got)
	}
	if len(st.DownTunnels) != 1 || st.DownTunnels[0].Name != "wg-new" {
		t.Errorf("down tunnels = %+v, want wg-new", st.DownTunnels)
	}
}

func TestObserveIgnoresDefaultRouteThroughTunnel(t *testing.T) {
	nl := fakeNetlink{links: []Link{{Name: "eth0", Index: 2, MTU: 1280}, {Name: "tailscale0", Index: 3, MTU: 1280, Up: true}}, defaultIndex: 3}
	st, err := Observe(wslSources(), nl, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if st.Outer == nil || st.Outer.Name != "eth0" {
		t.Fatalf("outer = %+v, want eth0 (the tunnel holds the default route but is not the underlay)", st.Outer)
	}
}

func TestObserveUnknownOuterInterface(t *testing.T) {
	cfg := config.Default()
	cfg.OuterInterface = "eth9"
	_, err := Observe(wslSources(), fakeNetlink{links: []Link{{Name: "eth0", Index: 2}}}, cfg)
	if err == nil || !strings.Contains(err.Error(), `"eth9" not found`) {
		t.Fatalf("err = %v, want it to name eth9", err)
	}
}

func TestObserveAssumeWSL(t *testing.T) {
	cfg := config.Default()
	cfg.AssumeWSL = true
	src := Sources{Root: kernelFS(debianRelease, debianVersion), Getenv: envOf(nil)}
	st, err := Observe(src, fakeNetlink{links: natLinks, defaultIndex: 2}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Env.WSL || !st.Env.Assumed {
		t.Errorf("env = %+v, want assumed WSL", st.Env)
	}
}

func TestIsDefaultRoute(t *testing.T) {
	parse := func(s string) *net.IPNet { _, n, _ := net.ParseCIDR(s); return n }
	for dst, want := range map[string]bool{"0.0.0.0/0": true, "::/0": true, "10.0.0.0/8": false, "0.0.0.0/1": false, "fd7a::/48": false} {
		if got := IsDefaultRoute(parse(dst)); got != want {
			t.Errorf("IsDefaultRoute(%s) = %v", dst, got)
		}
	}
	if !IsDefaultRoute(nil) {
		t.Error("a nil destination is the default route")
	}
}
