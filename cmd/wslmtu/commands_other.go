//go:build !linux && !windows

package main

import "github.com/spf13/cobra"

func hostEnv() env { return env{version: version} }

// addPlatform: wslmtu does its work inside WSL (Linux) and on its Windows
// host; elsewhere it only tells its version.
func (c *cli) addPlatform(*cobra.Command) {}
