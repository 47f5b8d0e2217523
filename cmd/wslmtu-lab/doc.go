// Command wslmtu-lab shows the WSL2 fragment black hole and its remedies on
// any Linux host (as root): it builds a network-namespace model of WSL2
// behind Hyper-V's NAT with a WireGuard tunnel to a peer (internal/lab),
// shows the 55 kB transfers hanging, then applies each remedy with the real
// fix code inside the model's "WSL", shows what works, and reverts it.
//
//	sudo go run ./cmd/wslmtu-lab [--ipv6] [--eth-mtu 1280] [--tunnel-mtu 1280] [--timeout 3s]
//
// It may import fix, internal/config and internal/lab.
package main
