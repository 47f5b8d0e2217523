package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
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
			err := s.do(func() error {
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
	err := s.do(func() error {
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

// Download fetches a 55 kB page served inside WSL from the peer, over the
// tunnel: the data flows WSL→peer, the direction Hyper-V breaks.
func (l *Lab) Download(ctx context.Context) Result {
	r := Result{Check: "download"}
	ctx, cancel := withCheckTimeout(ctx)
	defer cancel()
	srv, addr, err := serve(l.wsl, wslTun4.Addr(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = w.Write(page)
	}))
	if err != nil {
		return r.fail(err)
	}
	defer srv.Close()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return r.fail(err)
	}
	resp, err := httpClient(l.peer).Do(req)
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

// Upload POSTs 55 kB from WSL to a server in the peer, over the tunnel.
func (l *Lab) Upload(ctx context.Context) Result {
	r := Result{Check: "upload"}
	ctx, cancel := withCheckTimeout(ctx)
	defer cancel()
	got := make(chan int64, 1)
	srv, addr, err := serve(l.peer, peerTun4.Addr(), http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n, _ := io.Copy(io.Discard, req.Body)
		got <- n
		_, _ = fmt.Fprintf(w, "%d\n", n)
	}))
	if err != nil {
		return r.fail(err)
	}
	defer srv.Close()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", bytes.NewReader(page))
	if err != nil {
		return r.fail(err)
	}
	resp, err := httpClient(l.wsl).Do(req)
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

// Ping sends ICMP echo requests with payload bytes of data from WSL to the
// peer's tunnel address (IPv6 if v6), with the don't-fragment bit (or its
// IPv6 equivalent, no local fragmentation) if df, until a reply arrives or
// the check times out.
func (l *Lab) Ping(ctx context.Context, payload int, df, v6 bool) Result {
	ctx, cancel := withCheckTimeout(ctx)
	defer cancel()
	deadline, _ := ctx.Deadline()
	return l.ping(payload, df, v6, time.Until(deadline))
}

func (l *Lab) ping(payload int, df, v6 bool, timeout time.Duration) Result {
	fam := "v4"
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
	conn, err := l.icmpConn(df, v6)
	if err != nil {
		return r.fail(err)
	}
	defer conn.Close()

	dst := &net.IPAddr{IP: peerTun4.Addr().AsSlice()}
	var typ icmp.Type = ipv4.ICMPTypeEcho
	var reply icmp.Type = ipv4.ICMPTypeEchoReply
	proto := 1
	if v6 {
		dst = &net.IPAddr{IP: peerTun6.Addr().AsSlice()}
		typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	id := rand.IntN(0xffff) + 1
	data := bytes.Repeat([]byte{0xa5}, payload)
	start := time.Now()
	deadline := start.Add(timeout)
	_ = conn.SetReadDeadline(deadline)

	replies := make(chan error, 1)
	go func() {
		buf := make([]byte, 66000)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				replies <- err
				return
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || m.Type != reply {
				continue
			}
			if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id && len(e.Data) == payload {
				replies <- nil
				return
			}
		}
	}()

	// Resend every half second so one lost packet (say, during neighbour
	// discovery) does not look like a black hole.
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
		b, err := msg.Marshal(nil) // the kernel fills in the ICMPv6 checksum
		if err != nil {
			return r.fail(err)
		}
		if _, err := conn.WriteTo(b, dst); err != nil {
			r.Duration = time.Since(start)
			return r.fail(fmt.Errorf("send to %s: %w", dst, err))
		}
		select {
		case err := <-replies:
			r.Duration = time.Since(start)
			if err != nil {
				return r.fail(fmt.Errorf("no reply from %s: %w", dst, err))
			}
			r.OK, r.Bytes = true, int64(payload)
			return r
		case <-tick.C:
		}
	}
}

// icmpConn opens a raw ICMP socket inside WSL with the requested
// fragmentation behaviour.
func (l *Lab) icmpConn(df, v6 bool) (net.PacketConn, error) {
	network, laddr := "ip4:icmp", "0.0.0.0"
	if v6 {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	var conn net.PacketConn
	err := l.wsl.do(func() error {
		var err error
		conn, err = net.ListenPacket(network, laddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("raw socket in %s: %w", l.wsl.name, err)
	}
	rc, err := conn.(*net.IPConn).SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		switch {
		case !v6 && df:
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
		case !v6:
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
		case df:
			serr = errors.Join(
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO),
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1))
		default:
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT)
		}
	})
	if err = errors.Join(err, serr); err != nil {
		conn.Close()
		return nil, fmt.Errorf("set fragmentation options: %w", err)
	}
	return conn, nil
}

// FragmentsDropped is how many fragments from WSL hyperv has dropped so far
// (IPv4 and IPv6 together): proof that a hang is the fragment black hole.
func (l *Lab) FragmentsDropped() (int, error) {
	out, err := exec.Command("ip", "netns", "exec", l.hv.name, "nft", "-j", "list", "chain", "inet", "wslmtu", "fragments").Output()
	if err != nil {
		return 0, fmt.Errorf("lab: read fragment counters in %s: %w", l.hv.name, err)
	}
	return parseDropCounters(out)
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
