// Package nspawn is a test harness that boots a real systemd in a
// systemd-nspawn container (a cached Debian bookworm minbase rootfs, a
// throwaway overlay per container, a private network namespace) and runs
// commands inside it with nsenter. It works where the host itself has no
// systemd as PID 1. Linux and root only.
//
// It is for tests only. It may import internal/testenv/netnstest.
package nspawn
