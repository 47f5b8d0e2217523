package main

import "github.com/spf13/cobra"

// addPlatform adds the Linux commands: the ones that work on this host's
// interfaces, the agent, its installation, the config and the man pages.
func (c *cli) addPlatform(root *cobra.Command) {
	c.addConfigFlags(root)
	root.AddCommand(
		c.statusCmd(), c.fixCmd(), c.revertCmd(), c.runCmd(), c.probeCmd(), c.verifyCmd(), c.doctorCmd(),
		c.installCmd(), c.uninstallCmd(), c.configCmd(), c.manCmd(),
	)
}
