// Package statefile keeps wslmtu's small files (the state directory's JSON,
// /etc/wsl.conf) crash-safe, and serializes processes that change the host.
//
// It owns atomic writes, bounded reads and the state directory's locks
// (which name their holder). It may import internal/proc (to describe a
// lock's holder).
package statefile
