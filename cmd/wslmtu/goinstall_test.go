package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func goCmd(t *testing.T, args ...string) []byte {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// `go install github.com/wslmtu/wslmtu/cmd/wslmtu@latest` works when the
// module path is that of the import path, the package there is main and
// installs as wslmtu, and go.mod has no replace or exclude directives
// (go install pkg@version refuses a module that has them).
func TestGoInstallable(t *testing.T) {
	var mod struct {
		Module  struct{ Path string }
		Replace []any
		Exclude []any
	}
	if err := json.Unmarshal(goCmd(t, "mod", "edit", "-json", "../../go.mod"), &mod); err != nil {
		t.Fatal(err)
	}
	if mod.Module.Path != "github.com/wslmtu/wslmtu" || len(mod.Replace) > 0 || len(mod.Exclude) > 0 {
		t.Errorf("go.mod: module %q, %d replace and %d exclude directives", mod.Module.Path, len(mod.Replace), len(mod.Exclude))
	}
	got := strings.Fields(string(goCmd(t, "list", "-f", "{{.Name}} {{.ImportPath}} {{.Target}}", ".")))
	if len(got) != 3 || got[0] != "main" || got[1] != "github.com/wslmtu/wslmtu/cmd/wslmtu" || filepath.Base(got[2]) != "wslmtu" {
		t.Errorf("go list: %q, want package main github.com/wslmtu/wslmtu/cmd/wslmtu installing as wslmtu", got)
	}
}

// The Windows binary reads the IP interface table through winipcfg; the
// Linux binary must not link it (nor anything Windows-only).
func TestWindowsIPHelperOnlyInTheWindowsBinary(t *testing.T) {
	const winipcfg = "golang.zx2c4.com/wireguard/windows/tunnel/winipcfg"
	deps := func(goos string) []string {
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", ".")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("GOOS=%s go list -deps: %v", goos, err)
		}
		return strings.Fields(string(out))
	}
	if !slices.Contains(deps("windows"), winipcfg) {
		t.Errorf("the Windows build does not import %s: `wslmtu.exe status` no longer reads the table WSL reads", winipcfg)
	}
	if slices.Contains(deps("linux"), winipcfg) {
		t.Errorf("the Linux build imports %s", winipcfg)
	}
}
