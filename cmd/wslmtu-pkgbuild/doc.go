// Command pkgbuild builds wslmtu's .deb and .rpm packages with nfpm, from
// the root of a checkout:
//
//	go run ./cmd/wslmtu-pkgbuild [-version 1.2.3] [-arch amd64,arm64] [-formats deb,rpm] [-out dist]
//
// It builds the binary for each architecture with the version stamped in,
// asks the binary for what the packages ship besides (the commented default
// config, the shell completions, the man pages), takes the systemd unit from
// package systemd, and hands it all to nfpm's command line, run at a pinned
// version through `go install …@version` so that nfpm and its forty
// dependencies stay out of go.mod.
//
// It may import systemd (the unit); the maintainer scripts are in scripts/.
package main
