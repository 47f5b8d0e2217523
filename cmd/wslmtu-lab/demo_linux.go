package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/wslmtu/wslmtu/fix"
	"github.com/wslmtu/wslmtu/internal/config"
	"github.com/wslmtu/wslmtu/internal/lab"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// bigPing is the ICMP payload of the "big packet" check: 1248 bytes on the
// wire inside the tunnel, which WireGuard pads to 1248 and wraps into an
// outer packet above eth0's 1280, so it is lost in the broken setup.
const bigPing = 1220

const needRootMsg = "wslmtu-lab needs root (it creates network namespaces): sudo go run ./cmd/wslmtu-lab"

// geteuid is swapped by tests to see the message a normal user gets.
var geteuid = os.Geteuid

type options struct {
	ipv6      bool
	ethMTU    int
	tunnelMTU int
	timeout   time.Duration
}

// parseFlags returns the options, or an exit code when the program must stop
// (bad flags: exitUsage; -h: exitOK).
func parseFlags(args []string, stderr io.Writer) (options, int, bool) {
	var o options
	fs := flag.NewFlagSet("wslmtu-lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.ipv6, "ipv6", false, "WireGuard talks to the peer over IPv6 (80 bytes of overhead instead of 60)")
	fs.IntVar(&o.ethMTU, "eth-mtu", lab.DefaultEthMTU, "eth0's MTU in the lab's WSL, as WSL set it")
	fs.IntVar(&o.tunnelMTU, "tunnel-mtu", lab.DefaultTunnelMTU, "tailscale0's MTU, as tailscaled set it")
	fs.DurationVar(&o.timeout, "timeout", lab.CheckTimeout, "give up on each traffic check after this long")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sudo go run ./cmd/wslmtu-lab [flags]\n\n"+
			"Builds a namespace model of WSL2 behind Hyper-V's NAT (which drops IP fragments) with a\n"+
			"WireGuard tunnel to a peer, shows large transfers hanging, then applies each wslmtu remedy\n"+
			"with the real fix code, shows what it fixes, and reverts it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK, false
		}
		return o, exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wslmtu-lab: unexpected argument %q (it takes only flags)\n", fs.Arg(0))
		return o, exitUsage, false
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "wslmtu-lab: %v\n", err)
		return o, exitUsage, false
	}
	return o, 0, true
}

func (o options) validate() error {
	// 576 is the smallest MTU an IPv4 host must accept; 9000 the largest a
	// Hyper-V vSwitch carries.
	for _, f := range []struct {
		name string
		mtu  int
	}{{"--eth-mtu", o.ethMTU}, {"--tunnel-mtu", o.tunnelMTU}} {
		if f.mtu < 576 || f.mtu > config.MaxMTU {
			return fmt.Errorf("%s %d is out of range 576..%d", f.name, f.mtu, config.MaxMTU)
		}
	}
	if o.ipv6 && o.ethMTU < config.MinMTU {
		return fmt.Errorf("--eth-mtu %d is below %d, which the IPv6 underlay (--ipv6) needs on eth0", o.ethMTU, config.MinMTU)
	}
	if o.timeout <= 0 || o.timeout > lab.CheckTimeout {
		return fmt.Errorf("--timeout %v is out of range: more than 0 and at most %v (the lab bounds every check by that)", o.timeout, lab.CheckTimeout)
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, code, ok := parseFlags(args, stderr)
	if !ok {
		return code
	}
	if geteuid() != 0 {
		fmt.Fprintln(stderr, needRootMsg)
		return exitFailure
	}
	if removed, err := lab.RemoveStale(); err != nil {
		fmt.Fprintf(stderr, "wslmtu-lab: warning: removing namespaces of earlier runs: %v\n", err)
	} else if len(removed) > 0 {
		fmt.Fprintf(stdout, "removed namespaces left by an earlier run that died: %s\n", strings.Join(removed, ", "))
	}

	underlay := "IPv4"
	if opts.ipv6 {
		underlay = "IPv6"
	}
	fmt.Fprintf(stdout, "building the lab: WSL (eth0 %d, %s %d) → Hyper-V NAT dropping fragments → peer, "+
		"and a server behind a Windows VPN adapter (mtu %d), %s underlay … ",
		opts.ethMTU, lab.TunnelName, opts.tunnelMTU, lab.DefaultVPNMTU, underlay)
	start := time.Now()
	l, err := lab.New(lab.Options{EthMTU: opts.ethMTU, TunnelMTU: opts.tunnelMTU, IPv6Underlay: opts.ipv6, CorporateVPN: true})
	if err != nil {
		fmt.Fprintln(stdout, "failed")
		fmt.Fprintf(stderr, "wslmtu-lab: building the lab: %v\n", err)
		return exitFailure
	}
	stopSignals := l.CloseOnSignal()
	fmt.Fprintf(stdout, "up in %v\n", ms(time.Since(start)))
	fmt.Fprintf(stdout, "  namespaces %s (ip netns exec %s …); each check gives up after %v\n",
		strings.Join(l.Namespaces(), ", "), l.WSLNetNS(), opts.timeout)

	d, err := newDemo(l, opts, stdout, stderr)
	if err == nil {
		d.runAll()
		d.close()
	}
	stopSignals()

	fmt.Fprint(stdout, "\nremoving the lab … ")
	start = time.Now()
	if cerr := l.Close(); cerr != nil {
		fmt.Fprintln(stdout, "failed")
		fmt.Fprintf(stderr, "wslmtu-lab: removing the lab: %v\n", cerr)
		return exitFailure
	}
	fmt.Fprintf(stdout, "done in %v\n", ms(time.Since(start)))
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "wslmtu-lab: %v\n", err)
		return exitFailure
	case d.failed:
		return exitFailure
	}
	return exitOK
}

// demo runs the remedies one after another on one lab.
type demo struct {
	l        *lab.Lab
	opts     options
	out      io.Writer
	errOut   io.Writer
	nl       *netlink.Handle // the lab's, closed with it
	stateDir string
	host     fix.Host
	rows     []row
	failed   bool
}

// row is one line of the closing table.
type row struct {
	remedy, download, upload, ping, corporate, took string
}

func newDemo(l *lab.Lab, opts options, out, errOut io.Writer) (*demo, error) {
	d := &demo{l: l, opts: opts, out: out, errOut: errOut, nl: l.WSLNetlink()}
	var err error
	// The revert record and lock of the lab's "WSL", never the host's own.
	removeStaleStateDirs()
	if d.stateDir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", stateDirPrefix, os.Getpid())); err != nil {
		d.close()
		return nil, fmt.Errorf("state directory: %w", err)
	}
	d.host = fix.HostAt(d.nl, l.Sources(), d.stateDir)
	return d, nil
}

const stateDirPrefix = "wslmtu-lab-state-"

var stateDirName = regexp.MustCompile(`^` + stateDirPrefix + `([0-9]+)-[0-9]+$`)

// removeStaleStateDirs deletes the state directories of runs that ended on
// ^C: lab.CloseOnSignal exits the process right after closing the lab.
func removeStaleStateDirs() {
	entries, _ := os.ReadDir(os.TempDir())
	for _, e := range entries {
		m := stateDirName.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		if pid, err := strconv.Atoi(m[1]); err == nil && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
		}
	}
}

func (d *demo) close() {
	if d.stateDir != "" {
		os.RemoveAll(d.stateDir)
	}
}

// labConfig is `wslmtu fix --assume-wsl` with the given strategy and outer
// scope ("" for the default): the lab host is not WSL, and the config file
// of the host is not read.
func labConfig(s config.Strategy, scope config.Scope, mssClamp bool) config.Config {
	cfg := config.Default()
	cfg.AssumeWSL = true
	cfg.MTUStrategy = s
	if scope != "" {
		cfg.OuterScope = scope
	}
	cfg.MSSClamp = mssClamp
	return cfg
}

func (d *demo) runAll() {
	d.baseline()
	d.remedy(config.RaiseOuter, config.ScopeAll, false)
	d.remedy(config.RaiseOuter, config.ScopeTunnel, false)
	d.remedy(config.LowerTunnel, "", false)
	d.remedy(config.StrategyOff, "", true)
	d.table()
}

func (d *demo) stage(name string) string {
	return fmt.Sprintf("%s (eth0 %d, %s %d)", name, d.l.EthMTU(), lab.TunnelName, d.l.TunnelMTU())
}

// checks runs the traffic checks one by one, printing each as it goes (a
// hang takes the whole timeout, and a human should see why it waits).
func (d *demo) checks(stage string) (download, upload, ping, corporate cell) {
	before, ferr := d.l.FragmentsDropped()
	tooBig, ierr := d.l.ICMPDropped()
	download = d.check(stage, "download 55 kB (WSL → peer)", d.l.Download)
	upload = d.check(stage, "upload 55 kB (WSL → peer)", d.l.Upload)
	big := func(ctx context.Context) lab.Result { return d.l.Ping(ctx, bigPing, true, false) }
	ping = d.check(stage, fmt.Sprintf("ping %d DF", bigPing), big)
	if ping.tooBig() {
		// The tunnel refuses the packet at once: show what does fit.
		fits := d.l.TunnelMTU() - 28
		r := d.check(stage, fmt.Sprintf("ping %d DF (fills %s)", fits, lab.TunnelName),
			func(ctx context.Context) lab.Result { return d.l.Ping(ctx, fits, true, false) })
		ping.fits, ping.fitsResult = fits, &r.Result
	}
	corporate = d.check(stage, "upload 55 kB (WSL → server behind the Windows VPN)",
		func(ctx context.Context) lab.Result { return d.l.CorporateUpload(ctx, d.opts.ipv6) })
	if after, err := d.l.FragmentsDropped(); ferr == nil && err == nil {
		if n := after - before; n > 0 {
			fmt.Fprintf(d.out, "  Hyper-V silently dropped %d fragments from WSL meanwhile: that is the black hole\n", n)
		} else {
			fmt.Fprintln(d.out, "  no fragments from WSL reached Hyper-V meanwhile")
		}
	}
	if after, err := d.l.ICMPDropped(); ierr == nil && err == nil && after > tooBig {
		fmt.Fprintf(d.out, "  the VPN adapter dropped %d packets too big for it, and no ICMP told WSL: the raise broke the VPN\n", after-tooBig)
	}
	return download, upload, ping, corporate
}

// cell is one check's outcome as the table shows it.
type cell struct {
	lab.Result
	fits       int         // when the big ping was too big: the payload that fills the tunnel
	fitsResult *lab.Result // and how that went
}

func (c cell) tooBig() bool { return !c.OK && !c.Hung && strings.Contains(c.Err, "message too long") }

func (c cell) String() string {
	switch {
	case c.OK:
		return "ok " + ms(c.Duration).String()
	case c.Hung:
		return "hung"
	case c.fitsResult != nil:
		return fmt.Sprintf("too big (%d %s)", c.fits, cell{Result: *c.fitsResult}.short())
	case c.tooBig():
		return "too big"
	}
	return "failed"
}

// short is the outcome without the time, for the ping column.
func (c cell) short() string {
	s := c.String()
	if c.OK {
		return "ok"
	}
	return s
}

func (d *demo) check(stage, what string, f func(context.Context) lab.Result) cell {
	fmt.Fprintf(d.out, "%s: %s … ", stage, what)
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.timeout)
	r := f(ctx)
	cancel()
	switch {
	case r.OK:
		fmt.Fprintf(d.out, "ok in %v\n", ms(r.Duration))
	case r.Hung:
		fmt.Fprintf(d.out, "hung after %v\n", r.Duration.Round(100*time.Millisecond))
	case cell{Result: r}.tooBig():
		fmt.Fprintf(d.out, "refused at once, too big for %s %d (%s)\n", lab.TunnelName, d.l.TunnelMTU(), r.Err)
	default:
		fmt.Fprintf(d.out, "failed after %v: %s\n", ms(r.Duration), r.Err)
	}
	return cell{Result: r}
}

func (d *demo) baseline() {
	fmt.Fprintln(d.out)
	dl, ul, pg, corp := d.checks(d.stage("baseline"))
	d.rows = append(d.rows, row{fmt.Sprintf("none (eth0 %d)", d.l.EthMTU()), dl.String(), ul.String(), pg.short(), corp.String(), "-"})
}

// remedy applies one strategy (and outer scope, if not "") with the real fix
// code inside the lab's WSL, checks the traffic, and reverts.
func (d *demo) remedy(s config.Strategy, scope config.Scope, mssClamp bool) {
	name, cmdline := string(s), "wslmtu fix --assume-wsl --mtu-strategy "+string(s)
	if scope != "" {
		name, cmdline = fmt.Sprintf("%s, scope %s", s, scope), cmdline+" --outer-scope "+string(scope)
	}
	if mssClamp {
		name, cmdline = "mss-clamp", cmdline+" --mss-clamp"
	}
	fmt.Fprintf(d.out, "\n%s: %s\n", name, cmdline)
	cfg := labConfig(s, scope, mssClamp)
	var r fix.Report
	var took time.Duration
	// Inside the namespace: iptables (the MSS part) acts on the calling
	// thread's namespace, which must be the lab's WSL, never the host.
	err := d.l.DoWSL(func() (err error) {
		start := time.Now()
		r, err = d.host.Fix(cfg)
		took = time.Since(start)
		return err
	})
	fmt.Fprintln(d.out, "  plan:")
	indent(d.out, "    ", r.Plan.String())
	if err != nil {
		fmt.Fprintf(d.errOut, "wslmtu-lab: %s: fix failed: %v\n", name, err)
		d.failed = true
	}
	fmt.Fprintf(d.out, "  applied in %v:\n", took.Round(time.Microsecond))
	var applied strings.Builder
	for _, c := range r.Changes {
		fmt.Fprintln(&applied, c)
	}
	if r.MSS != nil {
		fmt.Fprintln(&applied, r.MSS)
	}
	if applied.Len() == 0 {
		applied.WriteString("nothing changed\n")
	}
	indent(d.out, "    ", applied.String())

	label := name
	if mssClamp && r.Plan.MSS != nil {
		label = fmt.Sprintf("mss-clamp (%d/%d)", r.Plan.MSS.MSS4, r.Plan.MSS.MSS6)
	}
	for _, c := range r.Changes {
		if c.Link != "" && !mssClamp {
			label = fmt.Sprintf("%s (%s → %d)", name, c.Link, c.To)
		}
	}
	dl, ul, pg, corp := d.checks(d.stage(name))
	ping := pg.short()
	if mssClamp && pg.Hung {
		ping = "hung (TCP only)"
	}
	d.rows = append(d.rows, row{label, dl.String(), ul.String(), ping, corp.String(), took.Round(10 * time.Microsecond).String()})

	loweredTunnel := d.l.TunnelMTU() < config.MinMTU
	fmt.Fprintln(d.out, "  revert: wslmtu revert")
	var reverted []fix.Reverted
	err = d.l.DoWSL(func() (err error) {
		reverted, _, err = d.host.Revert()
		return err
	})
	for _, rv := range reverted {
		fmt.Fprintf(d.out, "    %s\n", rv)
	}
	if err != nil {
		fmt.Fprintf(d.errOut, "wslmtu-lab: %s: revert failed: %v\n", name, err)
		d.failed = true
	}
	if loweredTunnel {
		d.restartTunnel()
	}
}

// restartTunnel brings tailscale0 back with its IPv6 address, which going
// below 1280 deleted and revert cannot restore, so the next remedy starts
// from the same state as the first.
func (d *demo) restartTunnel() {
	has6, err := d.tunnelHasIPv6()
	if err == nil && !has6 {
		fmt.Fprintf(d.out, "  %s has lost its IPv6 address: going below %d deleted it, and revert does not bring it back\n",
			lab.TunnelName, config.MinMTU)
	}
	fmt.Fprintf(d.out, "  restarting %s at %d, as a tailscaled reconnect would, so the next remedy starts clean … ",
		lab.TunnelName, d.opts.tunnelMTU)
	start := time.Now()
	if err := d.l.RestartTunnel(d.opts.tunnelMTU); err != nil {
		fmt.Fprintln(d.out, "failed")
		fmt.Fprintf(d.errOut, "wslmtu-lab: restarting %s: %v\n", lab.TunnelName, err)
		d.failed = true
		return
	}
	fmt.Fprintf(d.out, "up in %v\n", ms(time.Since(start)))
}

func (d *demo) tunnelHasIPv6() (bool, error) {
	link, err := d.nl.LinkByName(lab.TunnelName)
	if err != nil {
		return false, err
	}
	addrs, err := d.nl.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return false, err
	}
	want := d.l.WSLTunnelIP(true).AsSlice()
	for _, a := range addrs {
		if a.IP.Equal(want) {
			return true, nil
		}
	}
	return false, nil
}

func (d *demo) table() {
	fmt.Fprintln(d.out)
	tw := tabwriter.NewWriter(d.out, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "remedy\tdownload 55 kB\tupload 55 kB\tping %d DF\tcorporate VPN upload\tfix took\n", bigPing)
	for _, r := range d.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.remedy, r.download, r.upload, r.ping, r.corporate, r.took)
	}
	tw.Flush()
	fmt.Fprintln(d.out, "download, upload and ping cross tailscale0; the corporate VPN upload (55 kB) goes to a server behind a Windows VPN adapter at",
		lab.DefaultVPNMTU, "outside the tunnel.")
	fmt.Fprintln(d.out, "fix took: fix.Host.Fix observing, planning and applying inside the lab's WSL; the transfer times are the checks'.")
}

func indent(w io.Writer, prefix, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(w, "%s%s\n", prefix, line)
	}
}

// ms rounds a duration for display: to the millisecond, or to 0.1 ms below 10 ms.
func ms(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
