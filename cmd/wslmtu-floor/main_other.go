//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "wslmtu-floor runs only on Linux: it reacts to netlink link events")
	os.Exit(1)
}
