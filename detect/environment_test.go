package detect

import (
	"reflect"
	"testing"
	"testing/fstest"
)

// Whole environments: the evidence listed in order (only the first kernel
// string that shows WSL counts), the kernel named, the boot id read.
func TestDetectEnvironmentWhole(t *testing.T) {
	withBoot := func(fsys fstest.MapFS) fstest.MapFS {
		fsys["proc/sys/kernel/random/boot_id"] = &fstest.MapFile{Data: []byte("  5c3e1d9a-boot\n")}
		return fsys
	}
	noRelease := kernelFS(wsl2Release, wsl2Version, "run/WSL/1_interop")
	delete(noRelease, "proc/sys/kernel/osrelease")
	nat := "no wslinfo; one eth0 and no loopback0: NAT mode's links (consomme looks the same and is treated alike)"
	for _, tt := range []struct {
		name string
		src  Sources
		want Environment
	}{
		{"every sign", Sources{Root: withBoot(kernelFS(wsl2Release, wsl2Version, "proc/sys/fs/binfmt_misc/WSLInterop-late", "proc/sys/fs/binfmt_misc/WSLInterop", "run/WSL/1_interop", "mnt/wsl/resolv.conf")),
			Getenv: envOf(map[string]string{"WSL_DISTRO_NAME": "Ubuntu"})},
			Environment{WSL: true, Version: 2, Kernel: wsl2Release, BootID: "5c3e1d9a-boot", NetworkingMode: ModeNAT, ModeEvidence: nat, Evidence: []string{
				`kernel "` + wsl2Release + `" is a WSL2 kernel`,
				"/proc/sys/fs/binfmt_misc/WSLInterop exists", "/run/WSL exists", "/mnt/wsl exists", "WSL_DISTRO_NAME=Ubuntu"}}},
		{"no osrelease: the kernel is /proc/version's", Sources{Root: noRelease},
			Environment{WSL: true, Version: 2, Kernel: wsl2Version, NetworkingMode: ModeNAT, ModeEvidence: nat, Evidence: []string{
				`kernel "` + wsl2Version + `" is a WSL2 kernel`, "/run/WSL exists"}}},
		{"two signs, no variable", Sources{Root: kernelFS(oldWSL2Release, oldWSL2Version, "proc/sys/fs/binfmt_misc/WSLInterop", "run/WSL/1_interop"), Getenv: envOf(nil)},
			Environment{WSL: true, Version: 2, Kernel: oldWSL2Release, NetworkingMode: ModeNAT, ModeEvidence: nat, Evidence: []string{
				`kernel "` + oldWSL2Release + `" is a WSL2 kernel`, "/proc/sys/fs/binfmt_misc/WSLInterop exists", "/run/WSL exists"}}},
		{"WSL1", Sources{Root: kernelFS(wsl1Release, wsl1Version, "mnt/wsl/x")},
			Environment{WSL: true, Version: 1, Kernel: wsl1Release, Note: "WSL1 shares Windows' network stack: there is no eth0 MTU to fix", Evidence: []string{
				`kernel "` + wsl1Release + `" is WSL1`, "/mnt/wsl exists"}}},
		{"Docker Desktop's VM", Sources{Root: kernelFS(wsl2Release, wsl2Version)},
			Environment{Kernel: wsl2Release, Evidence: []string{`kernel "` + wsl2Release + `" is a WSL2 kernel`},
				Note: "the kernel is a WSL kernel, but there is no WSLInterop, /run/WSL, /mnt/wsl or WSL_DISTRO_NAME: " +
					"this looks like Docker Desktop's VM or another Linux on Microsoft's kernel, not a WSL distro (use --assume-wsl if it is one)"}},
		{"Docker Desktop's distro", Sources{Root: kernelFS(wsl2Release, wsl2Version), Getenv: envOf(map[string]string{"WSL_DISTRO_NAME": "docker-desktop-data"})},
			Environment{Kernel: wsl2Release, Evidence: []string{`kernel "` + wsl2Release + `" is a WSL2 kernel`, "WSL_DISTRO_NAME=docker-desktop-data"},
				Note: "this is Docker Desktop's own WSL distro (docker-desktop-data), not a user distro (use --assume-wsl to manage it anyway)"}},
		{"nothing readable", Sources{Root: fstest.MapFS{}}, Environment{Note: "the kernel is not a WSL kernel"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := DetectEnvironment(tt.src, natLinks); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// --assume-wsl keeps what detection found and a mode wslinfo gave; it reads
// the mode only when there is none.
func TestAssume(t *testing.T) {
	src := Sources{Root: kernelFS(debianRelease, debianVersion)}
	env := DetectEnvironment(src, natLinks)
	got := Assume(src, env, natLinks)
	want := Environment{WSL: true, Version: 2, Assumed: true, Kernel: debianRelease, Note: "the kernel is not a WSL kernel",
		NetworkingMode: ModeNAT, ModeEvidence: "no wslinfo; one eth0 and no loopback0: NAT mode's links (consomme looks the same and is treated alike)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	env.NetworkingMode, env.ModeEvidence = ModeMirrored, "said so"
	if got := Assume(src, env, natLinks); got.NetworkingMode != ModeMirrored || got.ModeEvidence != "said so" {
		t.Errorf("Assume replaced a known mode: %+v", got)
	}
}
