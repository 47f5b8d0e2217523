package detect

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// Which corroborating files and helpers a fuzzed host has, one bit each.
const (
	hasInterop     = 1 << iota // /proc/sys/fs/binfmt_misc/WSLInterop
	hasInteropLate             // /proc/sys/fs/binfmt_misc/WSLInterop-late
	hasRunWSL                  // /run/WSL/1_interop
	hasMntWSL                  // /mnt/wsl/resolv.conf
	noOSRelease                // /proc/sys/kernel/osrelease missing
	noProcVersion              // /proc/version missing
	hasWSLInfo                 // wslinfo answers with the fuzzed text
	wslInfoFails               // wslinfo is there but fails
)

// fuzzHost builds the fs.FS and helpers of a host from fuzzed strings.
func fuzzHost(release, version string, bits uint8, distro, wslinfo, links string) (Sources, []Link) {
	fsys := fstest.MapFS{}
	if bits&noOSRelease == 0 {
		fsys["proc/sys/kernel/osrelease"] = &fstest.MapFile{Data: []byte(release)}
	}
	if bits&noProcVersion == 0 {
		fsys["proc/version"] = &fstest.MapFile{Data: []byte(version)}
	}
	for bit, p := range map[uint8]string{
		hasInterop:     "proc/sys/fs/binfmt_misc/WSLInterop",
		hasInteropLate: "proc/sys/fs/binfmt_misc/WSLInterop-late",
		hasRunWSL:      "run/WSL/1_interop",
		hasMntWSL:      "mnt/wsl/resolv.conf",
	} {
		if bits&bit != 0 {
			fsys[p] = &fstest.MapFile{Data: []byte("enabled\n")}
		}
	}
	src := Sources{Root: fsys, Getenv: func(k string) string {
		if k == "WSL_DISTRO_NAME" {
			return distro
		}
		return ""
	}}
	switch {
	case bits&wslInfoFails != 0:
		src.Run = func(string, ...string) ([]byte, error) { return nil, errors.New("exit status 1") }
	case bits&hasWSLInfo != 0:
		src.Run = func(name string, _ ...string) ([]byte, error) {
			if name != "wslinfo" {
				return nil, errors.New("not installed")
			}
			return []byte(wslinfo), nil
		}
	}
	var ls []Link
	for i, name := range strings.Split(links, ",") {
		if name != "" {
			ls = append(ls, Link{Name: name, Index: i + 1, MTU: 1500, Up: true})
		}
	}
	return src, ls
}

// The documented kernel signatures, written out again so the oracle does
// not share env.go's regular expressions: WSL2 kernels say
// "microsoft-standard" (any case), WSL1 kernels "-Microsoft" as a word, in
// ASCII as kernel strings are ("-Microsoftʅ" ends the word; fuzzing asked).
var wsl1Signature = regexp.MustCompile(`-Microsoft([^0-9A-Za-z_]|$)`)

func wsl2Signature(s string) bool {
	return strings.Contains(strings.ToLower(s), "microsoft-standard")
}

// FuzzDetectEnvironment builds hosts from fuzzed kernel strings, files,
// variables, wslinfo output and link names, and checks what DetectEnvironment
// promises: WSL only with a WSL kernel and corroborating evidence, never
// Docker Desktop's distro, a networking mode only for WSL2 on a WSL2 kernel,
// and a note whenever the answer is "not WSL".
func FuzzDetectEnvironment(f *testing.F) {
	const corroborated = hasInterop | hasRunWSL
	for _, seed := range []struct {
		release, version string
		bits             uint8
		distro, wslinfo  string
		links            string
	}{
		{wsl2Release, wsl2Version, corroborated, "Ubuntu-24.04", "", "lo,eth0"},
		{oldWSL2Release, oldWSL2Version, hasInterop, "", "", "lo,eth0"},
		{wsl2Release, wsl2Version, hasInteropLate, "", "", "lo,eth0"},
		{wsl1Release, wsl1Version, 0, "Ubuntu", "", ""},
		{wsl1Release, wsl1Version, corroborated | hasWSLInfo, "Ubuntu", "nat\n", "lo,eth0"},
		{debianRelease, debianVersion, 0, "", "", "lo,eth0"},
		{debianRelease, debianVersion, corroborated, "Ubuntu-24.04", "", "lo,eth0"},
		{wsl2Release, wsl2Version, 0, "", "", "lo,eth0"},
		{wsl2Release, wsl2Version, hasMntWSL, "docker-desktop", "", "lo,eth0"},
		{wsl2Release, wsl2Version, hasRunWSL, "Ubuntu", "", "lo,loopback0,eth0,eth1"},
		{wsl2Release, wsl2Version, hasRunWSL | hasWSLInfo, "Ubuntu", "mirrored\n", "lo,eth0"},
		{wsl2Release, wsl2Version, hasRunWSL | wslInfoFails, "Ubuntu", "", "lo,eth0"},
		{wsl2Release, wsl2Version, hasRunWSL | noOSRelease, "Ubuntu", "", "lo,eth0"},
		{"", "", noOSRelease | noProcVersion | corroborated, "Ubuntu", "", ""},
	} {
		f.Add(seed.release, seed.version, seed.bits, seed.distro, seed.wslinfo, seed.links)
	}
	f.Fuzz(func(t *testing.T, release, version string, bits uint8, distro, wslinfo, links string) {
		src, ls := fuzzHost(release, version, bits, distro, wslinfo, links)
		env := DetectEnvironment(src, ls)
		if again := DetectEnvironment(src, ls); !reflect.DeepEqual(again, env) {
			t.Fatalf("not deterministic: %+v then %+v", env, again)
		}
		var kernels []string
		if bits&noOSRelease == 0 {
			kernels = append(kernels, strings.TrimSpace(release))
		}
		if bits&noProcVersion == 0 {
			kernels = append(kernels, strings.TrimSpace(version))
		}
		wsl2Kernel, wslKernel := false, false
		for _, k := range kernels {
			wsl2Kernel = wsl2Kernel || wsl2Signature(k)
			wslKernel = wslKernel || wsl2Signature(k) || wsl1Signature.MatchString(k)
		}
		corroborating := bits&(hasInterop|hasInteropLate|hasRunWSL|hasMntWSL) != 0 || distro != ""

		if env.WSL {
			if !wslKernel {
				t.Fatalf("WSL on kernel strings %q: %+v", kernels, env)
			}
			if !corroborating {
				t.Fatalf("WSL on the kernel alone: %+v", env)
			}
			if strings.HasPrefix(distro, "docker-desktop") {
				t.Fatalf("Docker Desktop's distro %q taken for WSL: %+v", distro, env)
			}
			if len(env.Evidence) < 2 {
				t.Fatalf("WSL on evidence %q", env.Evidence)
			}
			if env.Version != 1 && env.Version != 2 {
				t.Fatalf("WSL version %d", env.Version)
			}
		} else if env.Version != 0 || env.NetworkingMode != "" || env.Note == "" {
			t.Fatalf("not WSL, yet version %d mode %q (note %q)", env.Version, env.NetworkingMode, env.Note)
		}
		if env.Version == 1 && env.NetworkingMode != "" {
			t.Fatalf("WSL1 with networking mode %q", env.NetworkingMode)
		}
		if env.NetworkingMode != "" && !wsl2Kernel {
			t.Fatalf("networking mode %q without a WSL2 kernel string in %q", env.NetworkingMode, kernels)
		}
		if env.Version == 2 && !validMode(env.NetworkingMode) {
			t.Fatalf("networking mode %q (wslinfo said %q)", env.NetworkingMode, wslinfo)
		}
	})
}

// validMode: one lowercase word, as wslinfo prints a mode and as plans,
// logs and JSON carry it.
var validMode = regexp.MustCompile(`^[a-z][a-z0-9]*$`).MatchString
