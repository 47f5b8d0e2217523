package systemd

import (
	_ "embed"
	"strings"
)

// Where things go. The agent itself decides where its config and state live;
// the unit only creates those directories (ConfigurationDirectory=,
// StateDirectory=).
const (
	ServiceName   = "wslmtu"
	UnitPath      = "/etc/systemd/system/wslmtu.service"
	DefaultBinary = "/usr/local/bin/wslmtu"
	// The .deb and .rpm install the binary and the unit here.
	PackagedBinary   = "/usr/bin/wslmtu"
	PackagedUnitPath = "/lib/systemd/system/wslmtu.service"
	DefaultLog       = "/var/log/wslmtu.log"
	WSLConfPath      = "/etc/wsl.conf"
)

//go:embed wslmtu.service
var unitFile string

// Unit returns the unit file for the agent at binary. Paths with spaces are
// refused by Install; systemd would need them escaped.
func Unit(binary string) string {
	if binary == "" || binary == DefaultBinary {
		return unitFile
	}
	return strings.ReplaceAll(unitFile, "ExecStart="+DefaultBinary+" ", "ExecStart="+binary+" ")
}
