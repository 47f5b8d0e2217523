package main

import "github.com/spf13/cobra"

func hostEnv() env { return env{version: version} }

// addPlatform adds the Windows host's commands.
func (c *cli) addPlatform(root *cobra.Command) {
	root.AddCommand(newStatusCmd(), newDropsCmd(), newInstallCmd(), newUninstallCmd(), newServiceCmd())
}
