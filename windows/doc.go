// Package windows is the Windows-host side of wslmtu: it reads what Windows
// knows (netsh adapter MTUs, the WSL distro list, pktmon drop counters) and
// decides which adapter sets WSL's eth0 MTU and what the host service runs.
//
// Parsing and decisions are plain Go so they are tested on Linux, and so the
// Linux `doctor` command can call netsh.exe / wsl.exe through WSL interop and
// reuse the same parsers. Only the service itself (kardianos/service and the
// IP Helper change notifications) is behind _windows.go files.
package windows
