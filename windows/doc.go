// Package windows is the Windows-host side of wslmtu: it reads what Windows
// knows (the IP interface table WSL itself reads, the WSL distro list, pktmon
// drop counters) and decides which adapter sets WSL's eth0 MTU and what the
// host service runs.
//
// Parsing and decisions are plain Go so they are tested on Linux, and so the
// Linux `doctor` command can call netsh.exe / wsl.exe through WSL interop and
// reuse the same parsers and the same rule. Only the Windows APIs (the IP
// Helper table and change notifications, kardianos/service) are behind
// _windows.go files.
//
// It may import internal/tunnel (the arithmetic behind "crosses unfragmented
// up to"); the Linux doctor imports it for the parsers and the rule.
package windows
