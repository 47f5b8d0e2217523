package windows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func dropsFake(t *testing.T) *fakeRunner {
	ok := fakeAnswer{out: []byte("\r\n")}
	return &fakeRunner{answers: map[string]fakeAnswer{
		"pktmon.exe filter remove": ok,
		"pktmon.exe start --capture --comp all --type drop --pkt-size 128 --file-name C:\\T\\wslmtu.etl": ok,
		"pktmon.exe counters": {out: fixture(t, "pktmon_counters.txt")},
		"pktmon.exe stop":     ok,
		"pktmon.exe etl2txt C:\\T\\wslmtu.etl --out C:\\T\\wslmtu.txt": ok,
	}}
}

func dropsOpts(t *testing.T, slept *time.Duration) DropsOptions {
	return DropsOptions{
		Duration: 30 * time.Second, ETLPath: `C:\T\wslmtu.etl`, TextPath: `C:\T\wslmtu.txt`,
		ReadFile: func(p string) ([]byte, error) {
			if p != `C:\T\wslmtu.txt` {
				t.Errorf("read %s", p)
			}
			return fixture(t, "pktmon_etl2txt.txt"), nil
		},
		Sleep: func(_ context.Context, d time.Duration) error { *slept = d; return nil },
	}
}

func TestDrops(t *testing.T) {
	r := dropsFake(t)
	var slept time.Duration
	rep, err := Drops(context.Background(), r, dropsOpts(t, &slept))
	if err != nil {
		t.Fatal(err)
	}
	sameCalls(t, r.Calls(), []string{
		"pktmon.exe filter remove",
		`pktmon.exe start --capture --comp all --type drop --pkt-size 128 --file-name C:\T\wslmtu.etl`,
		"pktmon.exe counters",
		"pktmon.exe stop",
		`pktmon.exe etl2txt C:\T\wslmtu.etl --out C:\T\wslmtu.txt`,
	})
	if slept != 30*time.Second {
		t.Errorf("slept %s", slept)
	}
	if !rep.Summary.FragmentsDropped() || rep.Summary.FragmentDrops != 3 || rep.CounterDrops["Hyper-V Virtual Ethernet Adapter"] != 212 {
		t.Errorf("report %+v", rep.Summary)
	}
}

func TestDropsNotElevated(t *testing.T) {
	r := dropsFake(t)
	r.answers["pktmon.exe filter remove"] = fakeAnswer{err: exitErr(5, "Access is denied.\r\n")}
	var slept time.Duration
	_, err := Drops(context.Background(), r, dropsOpts(t, &slept))
	if !errors.Is(err, ErrNotElevated) || !strings.Contains(err.Error(), "Run as administrator") {
		t.Errorf("err %v", err)
	}
	// Localized message, only the exit code is reliable.
	r = dropsFake(t)
	r.answers["pktmon.exe filter remove"] = fakeAnswer{err: exitErr(5, "Zugriff verweigert")}
	if _, err := Drops(context.Background(), r, dropsOpts(t, &slept)); !errors.Is(err, ErrNotElevated) {
		t.Errorf("exit code 5: %v", err)
	}
}

func TestDropsStopsOnCancelAndFallsBackToFormat(t *testing.T) {
	r := dropsFake(t)
	opts := dropsOpts(t, new(time.Duration))
	ctx, cancel := context.WithCancel(context.Background())
	opts.Sleep = func(ctx context.Context, _ time.Duration) error { cancel(); return ctx.Err() }
	if _, err := Drops(ctx, r, opts); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v", err)
	}
	if calls := r.Calls(); calls[len(calls)-1] != "pktmon.exe stop" {
		t.Errorf("capture left running: %q", calls)
	}

	// Windows 10 2004 has `format`, not `etl2txt`.
	r = dropsFake(t)
	delete(r.answers, `pktmon.exe etl2txt C:\T\wslmtu.etl --out C:\T\wslmtu.txt`)
	r.answers[`pktmon.exe format C:\T\wslmtu.etl --out C:\T\wslmtu.txt`] = fakeAnswer{out: []byte("ok")}
	rep, err := Drops(context.Background(), r, dropsOpts(t, new(time.Duration)))
	if err != nil || rep.Summary.Total != 4 {
		t.Errorf("format fallback: %v %+v", err, rep.Summary)
	}
}
