// Command wslmtu keeps WSL2 networking working when a tunnel runs inside it.
// newRootCmd builds the whole command tree from one env, so tests run it
// in-process; the logic lives in the packages, this command only parses
// flags and prints. The man pages, the completions and `config --default`
// are made from the same tree.
//
// It may import every package of the module but the test environments
// (internal/testenv); nothing imports it.
package main
