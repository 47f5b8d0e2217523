package main

import (
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	_ "embed"

	"github.com/wslmtu/wslmtu/systemd"
)

// NFPM is the nfpm release the packages are built with.
const NFPM = "github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"

const (
	name     = "wslmtu"
	homepage = "https://github.com/wslmtu/wslmtu"
)

var (
	//go:embed scripts/postinst
	postinst string
	//go:embed scripts/prerm
	prerm string
	//go:embed scripts/postrm
	postrm string
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pkgbuild:", err)
		os.Exit(1)
	}
}

type options struct {
	version, maintainer, out string
	arches, formats          []string
}

func run(args []string) error {
	fs := flag.NewFlagSet("pkgbuild", flag.ContinueOnError)
	var o options
	var arches, formats string
	fs.StringVar(&o.version, "version", "", "package version (default: from git describe, else 0.0.0~gitDATE.COMMIT)")
	fs.StringVar(&arches, "arch", "amd64,arm64", "architectures, comma-separated")
	fs.StringVar(&formats, "formats", "deb,rpm", "package formats, comma-separated (deb, rpm)")
	fs.StringVar(&o.out, "out", "dist", "where the packages go")
	fs.StringVar(&o.maintainer, "maintainer", "", "Maintainer: field (default: the author of the last commit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.arches, o.formats = strings.Split(arches, ","), strings.Split(formats, ",")
	for _, f := range o.formats {
		if f != "deb" && f != "rpm" {
			return fmt.Errorf("-formats: unknown format %q (deb, rpm)", f)
		}
	}
	if runtime.GOOS != "linux" {
		return errors.New("build the packages on Linux: the binary is run to make the config, completions and man pages")
	}
	if _, err := os.Stat("cmd/wslmtu"); err != nil {
		return errors.New("run from the root of a wslmtu checkout: go run ./cmd/wslmtu-pkgbuild")
	}
	epoch := sourceDateEpoch()
	if o.version == "" {
		o.version = gitVersion(epoch)
	}
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(o.version) {
		return fmt.Errorf("-version %q: must start with a digit and hold only letters, digits and . + ~ (deb and rpm both take it)", o.version)
	}
	if o.maintainer == "" {
		o.maintainer = strings.TrimSpace(output("git", "log", "-1", "--format=%an <%ae>"))
	}
	if o.maintainer == "" {
		return errors.New("-maintainer: no git history to take it from; give one (Name <address>)")
	}

	work, err := os.MkdirTemp("", "wslmtu-pkgbuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}

	binaries := map[string]string{}
	for _, arch := range o.arches {
		bin := filepath.Join(work, "bin-"+arch, name)
		if err := goBuild(bin, arch, o.version); err != nil {
			return err
		}
		binaries[arch] = bin
	}
	// The generated files do not depend on the architecture: one binary
	// that runs here makes them.
	host, ok := binaries[runtime.GOARCH]
	if !ok {
		host = filepath.Join(work, "bin-host", name)
		if err := goBuild(host, runtime.GOARCH, o.version); err != nil {
			return err
		}
	}
	gen := filepath.Join(work, "gen")
	if err := generate(gen, host, binaries[o.arches[0]], o, epoch); err != nil {
		return err
	}

	nfpm := filepath.Join(work, "nfpm-bin", "nfpm")
	if err := goInstall(filepath.Dir(nfpm), NFPM); err != nil {
		return err
	}
	for _, format := range o.formats {
		for _, arch := range o.arches {
			cfg := filepath.Join(work, fmt.Sprintf("nfpm-%s-%s.json", format, arch))
			if err := writeConfig(cfg, nfpmConfig(o, format, arch, binaries[arch], gen)); err != nil {
				return err
			}
			cmd := exec.Command(nfpm, "package", "--config", cfg, "--packager", format, "--target", o.out)
			cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10))
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("nfpm %s %s: %w", format, arch, err)
			}
		}
	}
	return nil
}

// sourceDateEpoch is the time stamped into the packages: SOURCE_DATE_EPOCH,
// else the last commit's, so that the same commit gives the same packages.
func sourceDateEpoch() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(output("git", "log", "-1", "--format=%ct")), 10, 64); err == nil {
		return time.Unix(n, 0).UTC()
	}
	return time.Now().UTC()
}

// gitVersion is the version of a tag (v1.2.3 → 1.2.3, 1.2.3-4-gabc →
// 1.2.3+4.gabc), else 0.0.0~gitYYYYMMDD.COMMIT, which sorts before any
// release; a checkout with changes gets +dirty.
func gitVersion(epoch time.Time) string {
	dirty := strings.TrimSpace(output("git", "status", "--porcelain", "--untracked-files=no")) != ""
	v := strings.TrimSpace(output("git", "describe", "--tags", "--match", "v[0-9]*"))
	if v != "" {
		v = strings.Replace(strings.TrimPrefix(v, "v"), "-", "+", 1)
		v = strings.ReplaceAll(v, "-", ".")
	} else {
		commit := strings.TrimSpace(output("git", "rev-parse", "--short=12", "HEAD"))
		if commit == "" {
			commit = "unknown"
		}
		v = "0.0.0~git" + epoch.Format("20060102") + "." + commit
	}
	if dirty {
		v += "+dirty"
	}
	return v
}

// output runs a command and returns its stdout, "" when it fails.
func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func goBin() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// goBuild builds a static, stripped wslmtu with the version stamped in.
// Static (no cgo): it needs no particular libc; a Go PIE would need the
// dynamic loader.
func goBuild(out, arch, version string) error {
	fmt.Fprintf(os.Stderr, "pkgbuild: building %s for linux/%s\n", name, arch)
	cmd := exec.Command(goBin(), "build", "-trimpath",
		"-ldflags", "-s -w -buildid= -X main.version="+version, "-o", out, "./cmd/wslmtu")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build linux/%s: %w", arch, err)
	}
	return nil
}

func goInstall(dir, pkg string) error {
	fmt.Fprintf(os.Stderr, "pkgbuild: go install %s\n", pkg)
	cmd := exec.Command(goBin(), "install", pkg)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go install %s: %w", pkg, err)
	}
	return nil
}

// generate writes what the packages ship besides the binary into dir.
func generate(dir, host, shipped string, o options, epoch time.Time) error {
	if err := os.MkdirAll(filepath.Join(dir, "man"), 0o755); err != nil {
		return err
	}
	fromBinary := map[string][]string{
		"wslmtu.toml": {"config", "--default"},
		"wslmtu.bash": {"completion", "bash"},
		"_wslmtu":     {"completion", "zsh"},
		"wslmtu.fish": {"completion", "fish"},
	}
	for file, args := range fromBinary {
		out, err := runHost(host, epoch, args...)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, file), out, 0o644); err != nil {
			return err
		}
	}
	if _, err := runHost(host, epoch, "man", filepath.Join(dir, "man")); err != nil {
		return err
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "man", "*.1"))
	for _, p := range pages {
		if err := gzipFile(p); err != nil {
			return err
		}
	}
	files := map[string]string{
		"wslmtu.service": systemd.Unit(systemd.PackagedBinary),
		"postinst":       postinst,
		"prerm":          prerm,
		"postrm":         postrm,
		"copyright":      copyright(shipped, epoch),
		"lintian":        lintianOverrides,
		"changelog":      changelog(o, epoch),
	}
	for file, text := range files {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return gzipFile(filepath.Join(dir, "changelog"))
}

// runHost runs the wslmtu built for this machine.
func runHost(bin string, epoch time.Time, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("wslmtu %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// gzipFile replaces path with path.gz, compressed as `gzip -9n` does (no
// name, no time: reproducible; maximum compression: what lintian wants for
// man pages and changelogs).
func gzipFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(path+".gz", b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Remove(path)
}

// lintianOverrides: lintian exempts Go packages from the static-binary
// error when it sees their Go build dependency, which a package built
// outside Debian's tooling does not declare.
const lintianOverrides = `# Go binaries are statically linked by design (CGO_ENABLED=0).
wslmtu: statically-linked-binary [usr/bin/wslmtu]
`

// copyright names the project and the Go modules linked into the binary.
func copyright(binary string, epoch time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wslmtu: keeps WSL2 networking working when a tunnel runs inside it\n")
	fmt.Fprintf(&b, "Source: %s\n\n", homepage)
	fmt.Fprintf(&b, "Copyright %d the wslmtu authors.\n", epoch.Year())
	b.WriteString("License: Apache-2.0 (the LICENSE file at the top of the source; on Debian\n")
	b.WriteString("systems the full text is in /usr/share/common-licenses/Apache-2.0).\n")
	info, err := buildinfo.ReadFile(binary)
	if err != nil || len(info.Deps) == 0 {
		return b.String()
	}
	b.WriteString("\n/usr/bin/wslmtu is statically linked with these Go modules, each under\n")
	b.WriteString("the license in its own source:\n")
	for _, d := range info.Deps {
		fmt.Fprintf(&b, "  %s %s\n", d.Path, d.Version)
	}
	fmt.Fprintf(&b, "and the Go standard library (%s, BSD-3-Clause).\n", info.GoVersion)
	return b.String()
}

// changelog is a one-entry Debian changelog: the package is built from a
// commit, whose history is the project's git log.
func changelog(o options, epoch time.Time) string {
	commit := strings.TrimSpace(output("git", "rev-parse", "HEAD"))
	if commit == "" {
		commit = "an unknown commit"
	}
	return fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * Built from commit\n    %s;\n    its history is the project's git log (%s).\n\n -- %s  %s\n",
		name, o.version, commit, homepage, o.maintainer, epoch.Format(time.RFC1123Z))
}

// The parts of nfpm's configuration used here (its YAML reads JSON).
type nfpmInfo struct {
	Name          string    `json:"name"`
	Arch          string    `json:"arch"`
	Platform      string    `json:"platform"`
	Version       string    `json:"version"`
	VersionSchema string    `json:"version_schema"`
	Section       string    `json:"section"`
	Priority      string    `json:"priority"`
	Maintainer    string    `json:"maintainer"`
	Description   string    `json:"description"`
	Homepage      string    `json:"homepage"`
	Recommends    []string  `json:"recommends,omitempty"`
	Contents      []content `json:"contents"`
	Scripts       scripts   `json:"scripts"`
}

type content struct {
	Src      string    `json:"src"`
	Dst      string    `json:"dst"`
	Type     string    `json:"type,omitempty"`
	FileInfo *fileInfo `json:"file_info,omitempty"`
}

type fileInfo struct {
	Mode os.FileMode `json:"mode"`
}

type scripts struct {
	PostInstall string `json:"postinstall"`
	PreRemove   string `json:"preremove"`
	PostRemove  string `json:"postremove"`
}

const description = `Keeps WSL2 networking working when a tunnel runs inside it
 WSL2 behind Hyper-V's NAT drops IP fragments; a tunnel (Tailscale,
 WireGuard) whose packets no longer fit in eth0 hangs on every large
 transfer. The wslmtu agent raises eth0's MTU (or lowers the tunnel's, or
 clamps the TCP MSS) and re-applies it within a millisecond whenever WSL,
 Windows or the tunnel resets it. It shows what it would do, explains,
 and undoes what it did.`

func nfpmConfig(o options, format, arch, binary, gen string) nfpmInfo {
	g := func(f string) string { return filepath.Join(gen, f) }
	file := func(src, dst string, mode os.FileMode) content {
		return content{Src: src, Dst: dst, FileInfo: &fileInfo{Mode: mode}}
	}
	// Debian keeps units in /lib and zsh's packaged completions in
	// vendor-completions; rpm distributions in /usr/lib and site-functions.
	unitDir, zshDir := "/lib/systemd/system", "/usr/share/zsh/vendor-completions"
	if format == "rpm" {
		unitDir, zshDir = "/usr/lib/systemd/system", "/usr/share/zsh/site-functions"
	}
	contents := []content{
		file(binary, systemd.PackagedBinary, 0o755),
		file(g("wslmtu.service"), unitDir+"/wslmtu.service", 0o644),
		{Src: g("wslmtu.toml"), Dst: "/etc/wslmtu/wslmtu.toml", Type: "config|noreplace", FileInfo: &fileInfo{Mode: 0o644}},
		file(g("wslmtu.bash"), "/usr/share/bash-completion/completions/wslmtu", 0o644),
		file(g("_wslmtu"), zshDir+"/_wslmtu", 0o644),
		file(g("wslmtu.fish"), "/usr/share/fish/vendor_completions.d/wslmtu.fish", 0o644),
		file(g("copyright"), "/usr/share/doc/wslmtu/copyright", 0o644),
	}
	if format == "deb" {
		contents = append(contents,
			file(g("changelog.gz"), "/usr/share/doc/wslmtu/changelog.gz", 0o644),
			file(g("lintian"), "/usr/share/lintian/overrides/wslmtu", 0o644))
	}
	pages, _ := filepath.Glob(filepath.Join(gen, "man", "*.1.gz"))
	for _, p := range pages {
		contents = append(contents, file(p, "/usr/share/man/man1/"+filepath.Base(p), 0o644))
	}
	return nfpmInfo{
		Name:          name,
		Arch:          arch,
		Platform:      "linux",
		Version:       o.version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    o.maintainer,
		Description:   description,
		Homepage:      homepage,
		// MSS clamping (mss_clamp) needs it; the MTU fix does not.
		Recommends: []string{"iptables"},
		Contents:   contents,
		Scripts:    scripts{PostInstall: g("postinst"), PreRemove: g("prerm"), PostRemove: g("postrm")},
	}
}

func writeConfig(path string, cfg nfpmInfo) error {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
