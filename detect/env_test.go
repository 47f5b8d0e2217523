package detect

import (
	"strings"
	"testing"
	"testing/fstest"
)

// Kernel strings as the real systems print them.
const (
	wsl2Release    = "5.15.167.4-microsoft-standard-WSL2"
	wsl2Version    = "Linux version 5.15.167.4-microsoft-standard-WSL2 (root@f9c826d3017f) (gcc (GCC) 11.2.0, GNU ld (GNU Binutils) 2.37) #1 SMP Tue Nov 5 00:21:55 UTC 2024"
	oldWSL2Release = "4.19.128-microsoft-standard"
	oldWSL2Version = "Linux version 4.19.128-microsoft-standard (oe-user@oe-host) (gcc version 8.2.0 (GCC)) #1 SMP Tue Jun 23 12:58:10 UTC 2020"
	wsl1Release    = "4.4.0-19041-Microsoft"
	wsl1Version    = "Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com) (gcc version 5.4.0 (GCC) ) #3996-Microsoft Thu Jan 18 16:36:00 PST 2024"
	debianRelease  = "6.1.0-26-amd64"
	debianVersion  = "Linux version 6.1.0-26-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.112-1 (2024-09-30)"
)

func kernelFS(release, version string, extra ...string) fstest.MapFS {
	fsys := fstest.MapFS{
		"proc/sys/kernel/osrelease": {Data: []byte(release + "\n")},
		"proc/version":              {Data: []byte(version + "\n")},
	}
	for _, p := range extra {
		fsys[p] = &fstest.MapFile{Data: []byte("enabled\n")}
	}
	return fsys
}

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

var natLinks = []Link{{Name: "lo", Index: 1}, {Name: "eth0", Index: 2, MTU: 1280}}

func TestDetectEnvironment(t *testing.T) {
	distroEnv := envOf(map[string]string{"WSL_DISTRO_NAME": "Ubuntu-24.04"})
	tests := []struct {
		name        string
		src         Sources
		links       []Link
		wantWSL     bool
		wantVersion int
		wantMode    string
		noteHas     string
	}{
		{"WSL2 current kernel", Sources{Root: kernelFS(wsl2Release, wsl2Version, "proc/sys/fs/binfmt_misc/WSLInterop", "run/WSL/1_interop"), Getenv: distroEnv},
			natLinks, true, 2, "nat", ""},
		{"WSL2 old kernel", Sources{Root: kernelFS(oldWSL2Release, oldWSL2Version, "proc/sys/fs/binfmt_misc/WSLInterop"), Getenv: envOf(nil)},
			natLinks, true, 2, "nat", ""},
		{"WSL2 late-interop name", Sources{Root: kernelFS(wsl2Release, wsl2Version, "proc/sys/fs/binfmt_misc/WSLInterop-late"), Getenv: envOf(nil)},
			natLinks, true, 2, "nat", ""},
		{"WSL1", Sources{Root: kernelFS(wsl1Release, wsl1Version), Getenv: distroEnv},
			nil, true, 1, "", "no eth0 MTU to fix"},
		{"plain Linux", Sources{Root: kernelFS(debianRelease, debianVersion), Getenv: envOf(nil)},
			natLinks, false, 0, "", "not a WSL kernel"},
		{"plain Linux with a stray WSL_DISTRO_NAME", Sources{Root: kernelFS(debianRelease, debianVersion), Getenv: distroEnv},
			natLinks, false, 0, "", "not a WSL kernel"},
		{"Docker Desktop-like VM on the WSL kernel", Sources{Root: kernelFS(wsl2Release, wsl2Version), Getenv: envOf(nil)},
			natLinks, false, 0, "", "Docker Desktop"},
		{"Docker Desktop's own distro", Sources{Root: kernelFS(wsl2Release, wsl2Version, "mnt/wsl/resolv.conf"), Getenv: envOf(map[string]string{"WSL_DISTRO_NAME": "docker-desktop"})},
			natLinks, false, 0, "", "Docker Desktop"},
		{"mirrored mode from links", Sources{Root: kernelFS(wsl2Release, wsl2Version, "run/WSL/1_interop"), Getenv: distroEnv},
			[]Link{{Name: "lo"}, {Name: "loopback0"}, {Name: "eth0"}, {Name: "eth1"}}, true, 2, "mirrored", ""},
		{"mirrored mode from wslinfo", Sources{Root: kernelFS(wsl2Release, wsl2Version, "run/WSL/1_interop"), Getenv: distroEnv,
			Run: func(string, ...string) ([]byte, error) { return []byte("mirrored\n"), nil }},
			natLinks, true, 2, "mirrored", ""},
		// Found by FuzzDetectEnvironment: wslinfo's output was taken for the
		// mode verbatim, whatever it was; a mode wslmtu does not know is
		// "unknown" (what wslinfo said is the evidence).
		{"wslinfo prints no mode", Sources{Root: kernelFS(wsl2Release, wsl2Version, "run/WSL/1_interop"), Getenv: distroEnv,
			Run: func(string, ...string) ([]byte, error) {
				return []byte("Invalid command line argument: --networking-mode\n"), nil
			}},
			natLinks, true, 2, "unknown", ""},
		{"wslinfo prints the mode in capitals", Sources{Root: kernelFS(wsl2Release, wsl2Version, "run/WSL/1_interop"), Getenv: distroEnv,
			Run: func(string, ...string) ([]byte, error) { return []byte("Mirrored\r\n"), nil }},
			natLinks, true, 2, "mirrored", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := DetectEnvironment(tt.src, tt.links)
			if env.WSL != tt.wantWSL || env.Version != tt.wantVersion || env.NetworkingMode != tt.wantMode {
				t.Errorf("got WSL=%v version=%d mode=%q, want %v %d %q (evidence %q, note %q)",
					env.WSL, env.Version, env.NetworkingMode, tt.wantWSL, tt.wantVersion, tt.wantMode, env.Evidence, env.Note)
			}
			if !strings.Contains(env.Note, tt.noteHas) {
				t.Errorf("note %q does not say %q", env.Note, tt.noteHas)
			}
			if tt.wantWSL && len(env.Evidence) < 2 {
				t.Errorf("WSL decided on too little evidence: %q", env.Evidence)
			}
		})
	}
}
