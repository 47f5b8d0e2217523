// Package systemd installs the wslmtu agent as a service: our own systemd unit
// (embedded, installed through kardianos/service), or, on WSL without systemd,
// a [boot] command in /etc/wsl.conf. It never falls back to SysV scripts.
//
// It may import internal/proc and internal/statefile. The package builder
// takes the unit from here too (Unit), so the packages ship the same file.
package systemd
