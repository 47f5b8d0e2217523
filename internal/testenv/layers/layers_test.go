package layers

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/wslmtu/wslmtu"

// row is one line of the package table: a package and what it may import.
type row struct {
	line    int
	mayAll  bool // "every package but the test environments"
	imports []string
}

var (
	tableRow = regexp.MustCompile("^\\| `([^`]+)` \\|.*\\| ([^|]+) \\|$")
	aside    = regexp.MustCompile(`\s*\([^)]*\)`)
	braces   = regexp.MustCompile(`([\w/-]+)/\{([^}]*)\}`)
)

// readTable parses the table "| package | owns | may import |" of
// docs/development.md.
func readTable(t *testing.T, path string) map[string]row {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]row{}
	sc := bufio.NewScanner(f)
	in := false // inside the package table, which ends at its first non-table line
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "| package | owns | may import") {
			in = true
			continue
		}
		if in && !strings.HasPrefix(line, "|") {
			break
		}
		m := tableRow.FindStringSubmatch(line)
		if !in || m == nil {
			continue
		}
		r := row{line: n}
		cell := strings.TrimSpace(m[2])
		switch {
		case cell == "(its own go.mod)":
			continue // a module of its own, not in ./...
		case cell == "none":
		case strings.HasPrefix(cell, "every package but the test environments"):
			r.mayAll = true
		default:
			cell = aside.ReplaceAllString(cell, "")
			cell = braces.ReplaceAllStringFunc(cell, func(s string) string {
				g := braces.FindStringSubmatch(s)
				var out []string
				for _, p := range strings.Split(g[2], ",") {
					out = append(out, g[1]+"/"+strings.TrimSpace(p))
				}
				return strings.Join(out, ", ")
			})
			for _, p := range strings.Split(cell, ",") {
				r.imports = append(r.imports, strings.TrimSpace(p))
			}
		}
		rows[m[1]] = r
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no package table found", path)
	}
	return rows
}

// goList runs `go list` in the module for goos.
func goList(t *testing.T, root, goos string, args ...string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command on PATH")
	}
	cmd := exec.Command(goTool, append([]string{"list"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list %s (GOOS=%s): %v\n%s", strings.Join(args, " "), goos, err, stderr)
	}
	return strings.Fields(string(out))
}

func rel(p string) (string, bool) {
	if p == module {
		return ".", true
	}
	r, ok := strings.CutPrefix(p, module+"/")
	return r, ok
}

// TestLayers checks every package's imports (its non-test files, on Linux
// and Windows) against its row, and that the shipped binaries link no
// package testing.
func TestLayers(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(root, "docs", "development.md")
	rows := readTable(t, table)
	seen := map[string]bool{}
	for _, goos := range []string{"linux", "windows"} {
		for _, line := range goList(t, root, goos, "-f", "{{.ImportPath}}:{{join .Imports \",\"}}", "./...") {
			pkgPath, imports, _ := strings.Cut(line, ":")
			pkg, _ := rel(pkgPath)
			seen[pkg] = true
			r, ok := rows[pkg]
			if !ok {
				t.Errorf("%s: package %s has no row in the package table", table, pkg)
				continue
			}
			for _, imp := range strings.Split(imports, ",") {
				dep, ours := rel(imp)
				switch {
				case !ours:
				case strings.HasPrefix(dep, "internal/testenv/") && !strings.HasPrefix(pkg, "internal/testenv/"):
					t.Errorf("%s (GOOS=%s) imports the test environment %s: only tests may", pkg, goos, dep)
				case r.mayAll:
				case !slices.Contains(r.imports, dep):
					t.Errorf("%s (GOOS=%s) imports %s, which its row (%s:%d) does not allow: change the code or the table",
						pkg, goos, dep, table, r.line)
				}
			}
		}
	}
	for pkg, r := range rows {
		if !seen[pkg] {
			t.Errorf("%s:%d: the table names %s, which is not a package of the module", table, r.line, pkg)
		}
		for _, dep := range r.imports {
			if !seen[dep] {
				t.Errorf("%s:%d: %s may import %s, which is not a package of the module", table, r.line, pkg, dep)
			}
		}
	}
	for _, goos := range []string{"linux", "windows"} {
		deps := goList(t, root, goos, "-deps", "./cmd/wslmtu", "./cmd/wslmtu-lab")
		if slices.Contains(deps, "testing") {
			t.Errorf("a shipped binary (GOOS=%s) links package testing: %s", goos,
				fmt.Sprint("go list -deps ./cmd/wslmtu ./cmd/wslmtu-lab | grep -x testing"))
		}
	}
}
