package main

import "runtime/debug"

// version is the stamped version, else the module version `go install
// …@v1.2.3` records, else "dev".
func (c *cli) version() string {
	v := c.env.version
	if v == "" {
		v = "dev"
	}
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	return v
}
