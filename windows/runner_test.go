package windows

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestExecRunner(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh")
	}
	out, err := ExecRunner{}.Run(context.Background(), "sh", "-c", "echo out; printf 'A\\000c\\000c\\000e\\000s\\000s\\000 \\000d\\000e\\000n\\000i\\000e\\000d\\000' >&2; exit 5")
	var re *RunError
	if !errors.As(err, &re) || re.ExitCode != 5 {
		t.Fatalf("err %v", err)
	}
	if string(out) != "out\n" || !strings.Contains(re.Output, "Access denied") {
		t.Errorf("out %q, output %q (stderr UTF-16 must be decoded)", out, re.Output)
	}
	if !errors.Is(pktmonErr("start", out, err), ErrNotElevated) {
		t.Error("exit 5 not seen as elevation failure")
	}
	if _, err := (ExecRunner{}).Run(context.Background(), "wslmtu-no-such-program.exe"); err == nil || exitCode(err) != -1 {
		t.Errorf("missing program: %v", err)
	}
}
