//go:build !linux

package main

import (
	"fmt"
	"io"
)

func run(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "wslmtu-lab runs only on Linux: it builds network namespaces")
	return 1
}
