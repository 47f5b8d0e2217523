package tailnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// versionEnv names another tailscaled release for the nodes, e.g. v1.100.0.
// The control server stays the one this module's go.mod pins: control
// speaks to older and newer clients alike.
const versionEnv = "WSLMTU_TAILSCALE_VERSION"

// cacheRoot keeps the built tailscaled and tailscale between runs, one
// directory per release: a cold build takes minutes on two cores.
const cacheRoot = "/var/cache/wslmtu-test"

var releaseRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)

// pinnedVersion is tailscale.com's version in this module's go.mod (the
// tests run in the module's directory): the one release the project tests
// by default, and the one its control server comes from. (A test binary's
// build information lists no dependencies.)
func pinnedVersion() (string, error) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		return "", err
	}
	m := pinnedRE.FindSubmatch(mod)
	if m == nil {
		return "", errors.New("go.mod requires no tailscale.com release")
	}
	return string(m[1]), nil
}

var pinnedRE = regexp.MustCompile(`(?m)^\s*tailscale\.com (v[0-9]+\.[0-9]+\.[0-9]+)\s*$`)

// tailscaleVersion is the release the nodes run: versionEnv, else go.mod's.
func tailscaleVersion() (string, error) {
	v := os.Getenv(versionEnv)
	if v == "" {
		return pinnedVersion()
	}
	if !releaseRE.MatchString(v) {
		return "", fmt.Errorf("%s=%q is not a release (want vMAJOR.MINOR.PATCH, e.g. v1.102.5)", versionEnv, v)
	}
	return v, nil
}

// binaries are the programs a run needs, built once per run.
type binaries struct {
	version             string
	tailscaled, cli     string
	wslmtu              string
	tailscaleBuild      time.Duration // building, or finding them in the cache
	wslmtuBuild         time.Duration
	tailscaleFromCached bool
}

var (
	binOnce sync.Once
	bins    binaries
	binErr  error
	// runDir holds what lives only for this run (the wslmtu binary);
	// TestMain removes it.
	runDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if runDir != "" {
		os.RemoveAll(runDir)
	}
	os.Exit(code)
}

// getBinaries builds (or takes from the cache) tailscaled and tailscale at
// the tested release, and builds wslmtu from this checkout, once per run.
func getBinaries(t *testing.T) binaries {
	t.Helper()
	binOnce.Do(func() { bins, binErr = buildBinaries() })
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins
}

func buildBinaries() (binaries, error) {
	var b binaries
	var err error
	if b.version, err = tailscaleVersion(); err != nil {
		return b, err
	}
	if runDir, err = os.MkdirTemp("", "wslmtu-tailnet-"); err != nil {
		return b, err
	}
	var wg sync.WaitGroup
	var tsErr, wErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		b.tailscaled, b.cli, b.tailscaleFromCached, tsErr = cachedTailscale(b.version)
		b.tailscaleBuild = time.Since(start)
	}()
	start := time.Now()
	b.wslmtu, wErr = buildWSLMTU(runDir)
	b.wslmtuBuild = time.Since(start)
	wg.Wait()
	return b, errors.Join(tsErr, wErr)
}

// buildWSLMTU builds ./cmd/wslmtu of the checkout this module sits in.
func buildWSLMTU(dir string) (string, error) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module github.com/wslmtu/wslmtu\n") {
		return "", fmt.Errorf("%s is not wslmtu's checkout (go.mod: %v)", root, err)
	}
	out := filepath.Join(dir, "wslmtu")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/wslmtu")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wslmtu in %s: %v\n%s", root, err, b)
	}
	return out, nil
}

// cachedTailscale returns tailscaled and tailscale at version from
// cacheRoot/tailscale-VERSION, building them there first if missing.
// A lock file keeps two test processes from building at once.
func cachedTailscale(version string) (tailscaled, cli string, cached bool, err error) {
	dir := filepath.Join(cacheRoot, "tailscale-"+version)
	tailscaled, cli = filepath.Join(dir, "tailscaled"), filepath.Join(dir, "tailscale")
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return "", "", false, err
	}
	lock, err := os.OpenFile(filepath.Join(cacheRoot, "tailscale-"+version+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", "", false, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", "", false, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if reportsVersion(tailscaled, version) && reportsVersion(cli, version) {
		return tailscaled, cli, true, nil
	}
	// Built beside the cache and renamed into place, so an interrupted
	// build never leaves a directory that looks complete.
	tmp, err := os.MkdirTemp(cacheRoot, ".build-")
	if err != nil {
		return "", "", false, err
	}
	defer os.RemoveAll(tmp)
	// go install pkg@version builds with the release's own go.mod, as
	// tailscale builds it, not with this module's dependency versions.
	cmd := exec.Command("go", "install",
		"tailscale.com/cmd/tailscaled@"+version, "tailscale.com/cmd/tailscale@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Join(tmp, "bin"), "GOWORK=off", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", "", false, fmt.Errorf("go install tailscale.com/cmd/tailscaled@%s: %v\n%s", version, err, b)
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", "", false, err
	}
	if err := os.Rename(filepath.Join(tmp, "bin"), dir); err != nil {
		return "", "", false, err
	}
	if !reportsVersion(tailscaled, version) {
		return "", "", false, fmt.Errorf("%s built, but does not report version %s", tailscaled, version)
	}
	return tailscaled, cli, false, nil
}

// reportsVersion says whether the program at path runs and prints version
// (without its v) on the first line of --version; a suffix after "-" (such
// as -ERR-BuildInfo, for a build without VCS information) is ignored.
func reportsVersion(path, version string) bool {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(out), "\n")
	v, _, _ := strings.Cut(strings.TrimSpace(first), "-")
	return v == strings.TrimPrefix(version, "v")
}
