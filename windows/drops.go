package windows

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrNotElevated means pktmon refused to run without administrator rights.
var ErrNotElevated = errors.New("pktmon needs administrator rights: run from an elevated prompt (Run as administrator)")

// DropsOptions configures one capture.
type DropsOptions struct {
	Duration time.Duration
	ETLPath  string // pktmon's binary log
	TextPath string // its text conversion
	// Components is pktmon's --comp value. The default is "all": WinNAT and
	// the Hyper-V switch drop the fragments, not the physical NIC, so a
	// capture on `--comp nics` alone would not see the drops.
	Components string
	// ReadFile and Sleep are replaced in tests.
	ReadFile func(string) ([]byte, error)
	Sleep    func(context.Context, time.Duration) error
}

// DropReport is the result of `wslmtu.exe drops`.
type DropReport struct {
	Counters     []ComponentCounter `json:"counters"`
	CounterDrops map[string]uint64  `json:"counter_drops"` // Drop counter rows per component
	Events       []DropEvent        `json:"-"`
	Summary      DropSummary        `json:"summary"`
}

// Drops captures dropped packets with pktmon for opts.Duration and reports
// per-reason and per-component counts and whether fragments are among them.
// The capture is stopped even when ctx is cancelled, so pktmon is never left
// running.
func Drops(ctx context.Context, r Runner, opts DropsOptions) (DropReport, error) {
	if opts.ETLPath == "" || opts.TextPath == "" {
		return DropReport{}, fmt.Errorf("drops: ETLPath and TextPath are required")
	}
	if opts.Components == "" {
		opts.Components = "all"
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	var rep DropReport

	// Filters left from an earlier session would hide the drops we look for;
	// with no filter pktmon logs every component's drops.
	if out, err := r.Run(ctx, pktmonExe, "filter", "remove"); err != nil {
		return rep, pktmonErr("filter remove", out, err)
	}
	start := []string{"start", "--capture", "--comp", opts.Components, "--type", "drop",
		"--pkt-size", "128", "--file-name", opts.ETLPath}
	if out, err := r.Run(ctx, pktmonExe, start...); err != nil {
		return rep, pktmonErr("start", out, err)
	}
	stopCtx := context.WithoutCancel(ctx)
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		out, err := r.Run(stopCtx, pktmonExe, "stop")
		if err != nil {
			return pktmonErr("stop", out, err)
		}
		return nil
	}
	defer stop() //nolint:errcheck // only reached on an earlier error, which wins

	if err := opts.Sleep(ctx, opts.Duration); err != nil {
		return rep, err
	}
	// Counters are read before stop: they are the capture session's.
	out, err := r.Run(ctx, pktmonExe, "counters")
	if err != nil {
		return rep, pktmonErr("counters", out, err)
	}
	if rep.Counters, err = ParseCounters(out); err != nil {
		return rep, err
	}
	rep.CounterDrops = CounterDrops(rep.Counters)
	if err := stop(); err != nil {
		return rep, err
	}
	// etl2txt is the name since Windows 10 20H2; 2004 called it format.
	out, err = r.Run(ctx, pktmonExe, "etl2txt", opts.ETLPath, "--out", opts.TextPath)
	if err != nil {
		if e := pktmonErr("etl2txt", out, err); errors.Is(e, ErrNotElevated) {
			return rep, e
		}
		if out2, err2 := r.Run(ctx, pktmonExe, "format", opts.ETLPath, "--out", opts.TextPath); err2 != nil {
			return rep, pktmonErr("format", out2, err2)
		}
	}
	text, err := opts.ReadFile(opts.TextPath)
	if err != nil {
		return rep, fmt.Errorf("read pktmon text log: %w", err)
	}
	rep.Events = ParseDropLog(text)
	rep.Summary = SummarizeDrops(rep.Events, ComponentNames(rep.Counters))
	return rep, nil
}

// pktmonErr turns a failed pktmon run into an error that says what to do.
// Exit code 5 is ERROR_ACCESS_DENIED, the part of the refusal that is not
// localized.
func pktmonErr(step string, out []byte, err error) error {
	text := strings.ToLower(errorText(out, err))
	if exitCode(err) == 5 || strings.Contains(text, "access is denied") ||
		strings.Contains(text, "0x80070005") || strings.Contains(text, "elevat") {
		return fmt.Errorf("pktmon %s: %w", step, ErrNotElevated)
	}
	if exitCode(err) < 0 && strings.Contains(text, "not found") {
		return fmt.Errorf("pktmon %s: pktmon.exe not found (it ships with Windows 10 1809 and later): %w", step, err)
	}
	return fmt.Errorf("pktmon %s: %w", step, err)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
