package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
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
