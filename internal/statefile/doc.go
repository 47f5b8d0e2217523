// Package statefile keeps wslmtu's small files (the state directory's JSON,
// the metrics file, /etc/wsl.conf) crash-safe and safe from other users'
// links, and serializes processes that change the host.
//
// It owns atomic, descriptor-relative writes, bounded reads and the state
// directory's locks (which name their holder). It may import internal/proc (to describe a
// lock's holder).
package statefile
