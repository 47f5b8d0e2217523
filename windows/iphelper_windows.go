package windows

import (
	"fmt"
	"strconv"

	winapi "golang.org/x/sys/windows"
	"golang.zx2c4.com/wireguard/windows/tunnel/winipcfg"
)

// IPHelper reads the IP interface table through the IP Helper API, the way
// WSL does: GetIpInterfaceTable(AF_UNSPEC) for NlMtu and Connected, and the
// interface table for names (which are localized, so nothing is matched on
// them but WSL's own adapter).
type IPHelper struct{}

var _ InterfaceTable = IPHelper{}

// IPInterfaces implements InterfaceTable.
func (IPHelper) IPInterfaces() ([]IPInterface, error) {
	ip, err := winipcfg.GetIPInterfaceTable(winapi.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("GetIpInterfaceTable: %w", err)
	}
	ifs, err := winipcfg.GetIfTable2Ex(winipcfg.MibIfEntryNormalWithoutStatistics)
	if err != nil {
		return nil, fmt.Errorf("GetIfTable2Ex: %w", err)
	}
	byLUID := make(map[winipcfg.LUID]*winipcfg.MibIfRow2, len(ifs))
	for i := range ifs {
		byLUID[ifs[i].InterfaceLUID] = &ifs[i]
	}
	rows := make([]IPInterface, 0, len(ip))
	for _, r := range ip {
		row := IPInterface{
			Name:      "interface " + strconv.FormatUint(uint64(r.InterfaceIndex), 10),
			Index:     r.InterfaceIndex,
			Family:    "ipv4",
			MTU:       r.NLMTU,
			Connected: r.Connected,
		}
		if r.Family == winapi.AF_INET6 {
			row.Family = "ipv6"
		}
		if i, ok := byLUID[r.InterfaceLUID]; ok {
			if a := i.Alias(); a != "" {
				row.Name = a
			}
			row.Loopback = i.Type == winipcfg.IfTypeSoftwareLoopback
		}
		rows = append(rows, row)
	}
	return rows, nil
}
