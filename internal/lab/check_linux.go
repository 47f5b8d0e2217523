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
	"time"

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
// the check times out. The echo is probe's, so the lab and `wslmtu probe`
// send the same packets.
func (l *Lab) Ping(ctx context.Context, payload int, df, v6 bool) Result {
	ctx, cancel := withCheckTimeout(ctx)
	defer cancel()
	return l.ping(ctx, payload, df, v6)
}

func (l *Lab) ping(ctx context.Context, payload int, df, v6 bool) Result {
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
	dst := peerTun4.Addr()
	if v6 {
		dst = peerTun6.Addr()
	}
	var conn *probe.Conn
	err := l.wsl.do(func() error {
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
