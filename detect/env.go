package detect

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
)

// Sources are where facts come from; production uses "/" and the process env.
type Sources struct {
	Root   fs.FS
	Getenv func(string) string
	// Run runs a helper such as wslinfo; nil or an error means "not available".
	Run func(name string, args ...string) ([]byte, error)
	// WireGuard reads a WireGuard device's fwmark and listen port (wgctrl);
	// nil or !ok means it cannot be read.
	WireGuard func(name string) (WireGuardDevice, bool)
}

// Environment is what is known about the host.
type Environment struct {
	WSL            bool     `json:"wsl"`
	Version        int      `json:"wsl_version,omitempty"` // 1 or 2 when WSL
	Kernel         string   `json:"kernel"`
	Evidence       []string `json:"evidence,omitempty"`
	NetworkingMode string   `json:"networking_mode,omitempty"` // nat, mirrored, consomme, bridged, none, unknown
	ModeEvidence   string   `json:"mode_evidence,omitempty"`   // how the mode was told
	Note           string   `json:"note,omitempty"`            // why a WSL-looking host was not taken for WSL, and the like
	Assumed        bool     `json:"assumed,omitempty"`         // --assume-wsl made a non-WSL host count as WSL
	// BootID tells this kernel's boot from an earlier one: a WSL restart
	// reboots the VM but keeps the distro's disk, and with it wslmtu's
	// revert record, whose kernel values went with the old boot.
	BootID string `json:"boot_id,omitempty"`
}

// BootID is the kernel's boot id (/proc/sys/kernel/random/boot_id), "" when
// it cannot be read.
func BootID(root fs.FS) string {
	if root == nil {
		return ""
	}
	return strings.TrimSpace(readString(root, "proc/sys/kernel/random/boot_id"))
}

// WSL1 kernels are Microsoft's NT emulation and say "Microsoft" with a capital;
// WSL2 kernels say "microsoft-standard" (4.19) or "microsoft-standard-WSL2" (5.x+).
var (
	wsl2Kernel = regexp.MustCompile(`microsoft-standard`)
	wsl1Kernel = regexp.MustCompile(`-Microsoft\b`)
)

// DetectEnvironment decides from the kernel strings, corroborated by the files
// and variables only a WSL distro has. A WSL kernel alone is not enough: Docker
// Desktop's VM and other distributions built on Microsoft's kernel have it too.
// links are the host's interfaces, used to tell the networking mode.
func DetectEnvironment(src Sources, links []Link) Environment {
	if src.Root == nil {
		src.Root = noFiles{} // no root, no files
	}
	osrelease := strings.TrimSpace(readString(src.Root, "proc/sys/kernel/osrelease"))
	version := strings.TrimSpace(readString(src.Root, "proc/version"))
	env := Environment{Kernel: osrelease, BootID: BootID(src.Root)}
	if env.Kernel == "" {
		env.Kernel = version
	}

	kernelVersion := 0
	for _, s := range []string{osrelease, version} {
		switch {
		case s == "":
		case wsl2Kernel.MatchString(strings.ToLower(s)) && kernelVersion == 0:
			kernelVersion = 2
			env.Evidence = append(env.Evidence, fmt.Sprintf("kernel %q is a WSL2 kernel", s))
		case wsl1Kernel.MatchString(s) && kernelVersion == 0:
			kernelVersion = 1
			env.Evidence = append(env.Evidence, fmt.Sprintf("kernel %q is WSL1", s))
		}
	}

	corroborating := 0
	if matches, _ := fs.Glob(src.Root, "proc/sys/fs/binfmt_misc/WSLInterop*"); len(matches) > 0 {
		corroborating++
		env.Evidence = append(env.Evidence, "/"+matches[0]+" exists")
	}
	for _, p := range []string{"run/WSL", "mnt/wsl"} {
		if _, err := fs.Stat(src.Root, p); err == nil {
			corroborating++
			env.Evidence = append(env.Evidence, "/"+p+" exists")
		}
	}
	distro := ""
	if src.Getenv != nil {
		distro = src.Getenv("WSL_DISTRO_NAME")
	}
	if distro != "" {
		corroborating++
		env.Evidence = append(env.Evidence, "WSL_DISTRO_NAME="+distro)
	}

	switch {
	case kernelVersion == 0:
		env.Note = "the kernel is not a WSL kernel"
		return env
	case corroborating == 0:
		env.Note = "the kernel is a WSL kernel, but there is no WSLInterop, /run/WSL, /mnt/wsl or WSL_DISTRO_NAME: " +
			"this looks like Docker Desktop's VM or another Linux on Microsoft's kernel, not a WSL distro " +
			"(use --assume-wsl if it is one)"
		return env
	case strings.HasPrefix(distro, "docker-desktop"):
		env.Note = "this is Docker Desktop's own WSL distro (" + distro + "), not a user distro " +
			"(use --assume-wsl to manage it anyway)"
		return env
	}
	env.WSL = true
	env.Version = kernelVersion
	if kernelVersion == 1 {
		env.Note = "WSL1 shares Windows' network stack: there is no eth0 MTU to fix"
		return env
	}
	env.NetworkingMode, env.ModeEvidence = networkingMode(src, links)
	return env
}

// Networking modes, as wslmtu names them.
const (
	ModeNAT      = "nat"
	ModeMirrored = "mirrored"
	// ModeConsomme is WSL 2.9's user-mode NAT (networkingMode=consomme,
	// alias virtioproxy): it drops guest IP fragments outright and pushes
	// the smallest host MTU, like NAT mode.
	ModeConsomme = "consomme"
	ModeBridged  = "bridged"
	ModeNone     = "none"
	ModeUnknown  = "unknown"
)

// networkingMode asks wslinfo (WSL 2.0+) and otherwise reads the links:
// mirrored mode adds loopback0 and mirrors every Windows adapter as an ethN;
// NAT and consomme both give one eth0, which the links cannot tell apart.
func networkingMode(src Sources, links []Link) (mode, evidence string) {
	if src.Run != nil {
		if out, err := src.Run("wslinfo", "--networking-mode"); err == nil {
			said := strings.ToLower(strings.TrimSpace(string(out)))
			switch said {
			case ModeNAT, ModeMirrored, ModeBridged, ModeNone:
				return said, "wslinfo --networking-mode says " + said
			case "consomme", "virtioproxy":
				return ModeConsomme, "wslinfo --networking-mode says " + said + " (consomme, WSL's user-mode NAT)"
			case "":
			default:
				return ModeUnknown, fmt.Sprintf("wslinfo --networking-mode says %q, a mode wslmtu does not know", said)
			}
		}
	}
	loopback0, eths := false, 0
	for _, l := range links {
		if l.Name == "loopback0" {
			loopback0 = true
		}
		if IsWSLAdapter(l.Name) {
			eths++
		}
	}
	switch {
	case loopback0:
		return ModeMirrored, fmt.Sprintf("no wslinfo; loopback0 and %d eth interface(s): mirrored mode's links", eths)
	case eths == 1:
		return ModeNAT, "no wslinfo; one eth0 and no loopback0: NAT mode's links (consomme looks the same and is treated alike)"
	}
	return ModeUnknown, fmt.Sprintf("no wslinfo; %d eth interface(s) and no loopback0: not a mode wslmtu can tell from the links", eths)
}

func readString(root fs.FS, name string) string {
	if root == nil {
		return ""
	}
	data, err := fs.ReadFile(root, name)
	if err != nil {
		return ""
	}
	return string(data)
}

// noFiles is a root without any file.
type noFiles struct{}

func (noFiles) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}
