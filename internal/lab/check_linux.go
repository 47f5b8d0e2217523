package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wslmtu/wslmtu/internal/probe"
)

// CheckTimeout bounds every traffic check: the black hole shows as a hang,
// and a healthy lab answers within milliseconds.
const CheckTimeout = 3 * time.Second

// PageSize is the size of the page Download and Upload move: the 55 kB login
// page that hangs in the original report.
const PageSize = 55_000

// Result is the outcome of one traffic check.
type Result struct {
	Check    string        // what was tried, e.g. "download" or "ping v4 1188 DF"
	OK       bool          // all bytes arrived
	Hung     bool          // nothing came back before the deadline: the black hole
	Bytes    int64         // payload bytes that arrived
	Duration time.Duration // until success, or until giving up
	Err      string        // why it failed, empty when OK
}

func (r Result) String() string {
	switch {
	case r.OK:
		return fmt.Sprintf("%s: ok, %d bytes in %v", r.Check, r.Bytes, r.Duration.Round(time.Microsecond))
	case r.Hung:
		return fmt.Sprintf("%s: hung after %v (%d bytes arrived): %s", r.Check, r.Duration.Round(time.Millisecond), r.Bytes, r.Err)
	default:
		return fmt.Sprintf("%s: failed after %v: %s", r.Check, r.Duration.Round(time.Millisecond), r.Err)
	}
}

// RunChecks runs checks side by side, as a host's flows overlap, and
// returns their results in the same order.
func RunChecks(ctx context.Context, checks []func(context.Context) Result) []Result {
	results := make([]Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { results[i] = c(ctx) })
	}
	wg.Wait()
	return results
}

func (r *Result) fail(err error) Result {
	r.Err = err.Error()
	var ne net.Error
	r.Hung = errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
	return *r
}

func withCheckTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, CheckTimeout)
}

// page is the body served by Download and sent by Upload.
var page = bytes.Repeat([]byte("wslmtu-lab-page\n"), PageSize/16+1)[:PageSize]

// httpClient dials from inside s, so the connection starts in that namespace.
func httpClient(s *space) *http.Client {
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := s.ns.Do(func() error {
				var err error
				// A literal address makes the dialer create the socket on this
				// goroutine (no parallel dial), hence on this namespaced thread.
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}
	return &http.Client{Transport: tr}
}

// serve starts an HTTP server listening on addr inside s.
func serve(s *space, addr netip.Addr, h http.Handler) (*http.Server, string, error) {
	var ln net.Listener
	err := s.ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s in %s: %w", addr, s.name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: CheckTimeout}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}

// Download fetches a 55 kB page served inside WSL from the peer, over
// tailscale0: the data flows WSL→peer, the direction Hyper-V breaks.
func (l *Lab) Download(ctx context.Context) Result { return l.ts.Download(ctx) }

// Upload POSTs 55 kB from WSL to a server in the peer, over tailscale0.
func (l *Lab) Upload(ctx context.Context) Result { return l.ts.Upload(ctx) }

// CorporateUpload POSTs 55 kB from WSL to the server behind the Windows VPN
// (Options.CorporateVPN), over IPv6 if v6: ordinary traffic, not the
// tunnel's, that must keep fitting the VPN adapter.
func (l *Lab) CorporateUpload(ctx context.Context, v6 bool) Result {
	check, addr := "corporate upload v4", corpLAN4.Addr()
	if v6 {
		check, addr = "corporate upload v6", corpLAN6.Addr()
	}
	if l.corp == nil {
		r := Result{Check: check}
		return r.fail(errors.New("no corporate VPN in this lab (Options.CorporateVPN)"))
	}
	return l.post(ctx, check, l.wsl, l.corp, addr)
}

// fetch GETs the page from a server in server at addr, with a client in client.
func (l *Lab) fetch(ctx context.Context, check string, server, client *space, addr netip.Addr) Result {
	r := Result{Check: check}
	ctx, cancel := withCheckTimeout(ctx)
	defer cancel()
	srv, url, err := serve(server, addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = w.Write(page)
	}))
	if err != nil {
		return r.fail(err)
	}
	defer srv.Close()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+url+"/", nil)
	if err != nil {
		return r.fail(err)
	}
	resp, err := httpClient(client).Do(req)
	if err != nil {
		r.Duration = time.Since(start)
		return r.fail(err)
	}
	defer resp.Body.Close()
	r.Bytes, err = io.Copy(io.Discard, resp.Body)
	r.Duration = time.Since(start)
	if err != nil {
		return r.fail(err)
	}
	if r.Bytes != int64(len(page)) {
		return r.fail(fmt.Errorf("got %d of %d bytes", r.Bytes, len(page)))
	}
	r.OK = true
	return r
}

// post POSTs the page from a client in client to a server in server at addr.
func (l *Lab) post(ctx context.Context, check string, client, server *space, addr netip.Addr) Result {
	return l.send(ctx, check, http.MethodPost, client, server, addr)
}

// send sends the page as the body of a method request from a client in
// client to a server in server at addr.
func (l *Lab) send(ctx context.Context, check, method string, client, server *space, addr netip.Addr) Result {
	r := Result{Check: check}
	ctx, cancel := withCheckTimeout(ctx)
	defer cancel()
	got := make(chan int64, 1)
	srv, url, err := serve(server, addr, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n, _ := io.Copy(io.Discard, req.Body)
		got <- n
		_, _ = fmt.Fprintf(w, "%d\n", n)
	}))
	if err != nil {
		return r.fail(err)
	}
	defer srv.Close()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+url+"/", bytes.NewReader(page))
	if err != nil {
		return r.fail(err)
	}
	resp, err := httpClient(client).Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	r.Duration = time.Since(start)
	select {
	case r.Bytes = <-got:
	default:
	}
	if err != nil {
		return r.fail(err)
	}
	if resp.StatusCode != http.StatusOK || r.Bytes != int64(len(page)) {
		return r.fail(fmt.Errorf("server got %d of %d bytes, status %s", r.Bytes, len(page), resp.Status))
	}
	r.OK = true
	return r
}

// SendUDP sends UDP datagrams with payload bytes of data from WSL to the
// peer's LAN address (IPv6 if v6), outside any tunnel and without the
// don't-fragment bit, as zerotier-one sends its physical packets, until one
// arrives whole or the check times out. A datagram larger than eth0 leaves
// in fragments, which the fragment-dropping middle loses.
func (l *Lab) SendUDP(ctx context.Context, payload int, v6 bool) Result {
	fam, network, dst := "v4", "udp4", peerLAN4.Addr()
	if v6 {
		fam, network, dst = "v6", "udp6", peerLAN6.Addr()
	}
	r := Result{Check: fmt.Sprintf("udp %s %d", fam, payload)}
	if v6 && !l.opts.IPv6Underlay {
		return r.fail(errors.New("eth0 has no IPv6 address without IPv6Underlay"))
	}
	if payload < 1 || payload > 65000 {
		return r.fail(fmt.Errorf("payload %d out of range 1..65000", payload))
	}
	ctx, cancel := withCheckTimeout(ctx)
	defer cancel()
	deadline, _ := ctx.Deadline()

	var rx, tx net.PacketConn
	err := l.peer.ns.Do(func() (err error) {
		rx, err = net.ListenPacket(network, netip.AddrPortFrom(dst, 0).String())
		return err
	})
	if err != nil {
		return r.fail(fmt.Errorf("listen in %s: %w", l.peer.name, err))
	}
	defer rx.Close()
	if err := l.wsl.ns.Do(func() (err error) {
		tx, err = net.ListenPacket(network, ":0")
		return err
	}); err != nil {
		return r.fail(fmt.Errorf("socket in %s: %w", l.wsl.name, err))
	}
	defer tx.Close()
	if err := dontFragment(tx, v6); err != nil {
		return r.fail(err)
	}
	got := make(chan error, 1)
	_ = rx.SetReadDeadline(deadline)
	go func() {
		buf := make([]byte, 66000)
		for {
			n, _, err := rx.ReadFrom(buf)
			if err != nil || n == payload {
				got <- err
				return
			}
		}
	}()
	data := bytes.Repeat([]byte{0x5a}, payload)
	start := time.Now()
	// Resend: one datagram lost to neighbour discovery is not a black hole.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := tx.WriteTo(data, rx.LocalAddr()); err != nil {
			r.Duration = time.Since(start)
			return r.fail(fmt.Errorf("send to %s: %w", rx.LocalAddr(), err))
		}
		select {
		case err := <-got:
			r.Duration = time.Since(start)
			if err != nil {
				return r.fail(fmt.Errorf("nothing arrived at %s: %w", rx.LocalAddr(), err))
			}
			r.OK, r.Bytes = true, int64(payload)
			return r
		case <-tick.C:
		}
	}
}

// dontFragment lets the kernel fragment what the socket sends (DF clear;
// for IPv6, fragmenting at the source instead of failing).
func dontFragment(c net.PacketConn, v6 bool) error {
	rc, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
		}
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("set fragmentation options: %w", err)
	}
	return nil
}

// Ping sends ICMP echo requests with payload bytes of data from WSL to the
// peer's tunnel address (IPv6 if v6), with the don't-fragment bit (or its
// IPv6 equivalent, no local fragmentation) if df, until a reply arrives or
// the check times out. The echo is probe's, so the lab and `wslmtu probe`
// send the same packets.
func (l *Lab) Ping(ctx context.Context, payload int, df, v6 bool) Result {
	ctx, cancel := withCheckTimeout(ctx)
	defer cancel()
	return l.ping(ctx, l.ts.PeerIP(v6), payload, df)
}

// ping pings dst from WSL until a reply arrives or ctx ends.
func (l *Lab) ping(ctx context.Context, dst netip.Addr, payload int, df bool) Result {
	fam, v6 := "v4", dst.Is6()
	if v6 {
		fam = "v6"
	}
	r := Result{Check: fmt.Sprintf("ping %s %d", fam, payload)}
	if df {
		r.Check += " DF"
	}
	if payload < 0 || payload > 65000 {
		return r.fail(fmt.Errorf("payload %d out of range 0..65000", payload))
	}
	var conn *probe.Conn
	err := l.wsl.ns.Do(func() error {
		var err error
		conn, err = probe.Dial(dst)
		return err
	})
	if err != nil {
		return r.fail(fmt.Errorf("ICMP socket in %s: %w", l.wsl.name, err))
	}
	defer conn.Close()
	start := time.Now()
	// Resend every half second so one lost packet (say, during neighbour
	// discovery) does not look like a black hole.
	err = conn.Echo(ctx, probe.Probe{Size: payload, DF: df}, 500*time.Millisecond)
	r.Duration = time.Since(start)
	if err != nil {
		return r.fail(err)
	}
	r.OK, r.Bytes = true, int64(payload)
	return r
}

// FragmentsDropped is how many fragments from WSL the middle namespace
// (Hyper-V, or the Windows adapter when mirrored) has dropped so far (IPv4
// and IPv6 together): proof that a hang is the fragment black hole.
func (l *Lab) FragmentsDropped() (int, error) { return l.dropCounter("fragments") }

// ICMPDropped is how many ICMP fragmentation-needed and packet-too-big
// messages the middle namespace has kept from WSL so far: proof that a hang
// behind the corporate VPN is a packet too big for its adapter.
func (l *Lab) ICMPDropped() (int, error) { return l.dropCounter("too_big") }

func (l *Lab) dropCounter(chain string) (int, error) {
	out, err := exec.Command("ip", "netns", "exec", l.hv.name, "nft", "-j", "list", "chain", "inet", "wslmtu", chain).Output()
	if err != nil {
		return 0, fmt.Errorf("lab: read the %s counters in %s: %w", chain, l.hv.name, err)
	}
	return parseDropCounters(out)
}

// AdapterRefused is how many frames from WSL the middle's end of eth0 has
// refused so far: in mirrored mode, frames larger than the Windows
// adapter's MTU, which vanish without an error.
func (l *Lab) AdapterRefused() (int, error) {
	link, err := l.hv.nl.LinkByName(hvWSLName)
	if err != nil {
		return 0, fmt.Errorf("lab: %s in %s: %w", hvWSLName, l.hv.name, err)
	}
	st := link.Attrs().Statistics
	if st == nil {
		return 0, fmt.Errorf("lab: %s in %s has no statistics", hvWSLName, l.hv.name)
	}
	return int(st.RxDropped), nil
}

// parseDropCounters sums the packet counters in `nft -j list chain` output.
func parseDropCounters(js []byte) (int, error) {
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Expr []map[string]json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return 0, fmt.Errorf("lab: parse nft json: %w", err)
	}
	total := 0
	for _, o := range doc.Nftables {
		if o.Rule == nil {
			continue
		}
		for _, e := range o.Rule.Expr {
			raw, ok := e["counter"]
			if !ok {
				continue
			}
			var c struct {
				Packets int `json:"packets"`
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				return 0, fmt.Errorf("lab: parse nft counter %s: %w", raw, err)
			}
			total += c.Packets
		}
	}
	return total, nil
}
