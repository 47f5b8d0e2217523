package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// KeyType is how a key's value is written on the command line.
type KeyType string

const (
	TypeString KeyType = "string"
	TypeInt    KeyType = "int"
	TypeBool   KeyType = "bool"
	TypeList   KeyType = "list"
	TypeTables KeyType = "tables" // [[tunnel]]: no flag
)

// Key describes one setting: its TOML key (the flag is the same with '-'),
// a one-line usage for --help and the README, and the paragraph the
// commented default file carries above it.
type Key struct {
	Name    string
	Type    KeyType
	Usage   string
	Comment string
}

// Flag is the command-line flag of the key, "" when it has none.
func (k Key) Flag() string {
	if k.Type == TypeTables {
		return ""
	}
	return strings.ReplaceAll(k.Name, "_", "-")
}

// Keys is every setting, in the order the default file and the README list
// them. It is the one description of the config: the parser's key check,
// the flags, `wslmtu config --default` and the README table come from it.
var Keys = []Key{
	{Name: "mtu_strategy", Type: TypeString,
		Usage: "auto, raise-outer, lower-tunnel or off",
		Comment: `How to fix the MTU. "auto" picks per WSL networking mode: raise-outer under
WSL's NAT (nat, consomme), lower-tunnel in mirrored mode (or MSS clamping
where that would take the tunnel below 1280). "raise-outer" raises the outer
interface (eth0) to what the tunnels need (tunnel MTU + 80 for WireGuard);
"lower-tunnel" lowers the tunnels instead (this removes their IPv6 addresses
below 1280); "off" changes no MTU.`},
	{Name: "outer_scope", Type: TypeString,
		Usage: "tunnel or all: which packets a raised outer interface carries at its new MTU",
		Comment: `With raise-outer, "tunnel" raises eth0 for the tunnel's own packets only: every
other packet keeps the MTU Windows chose (a route MTU), so a Windows VPN that
drops larger packets keeps working. "all" raises it for everything.`},
	{Name: "max_outer_mtu", Type: TypeInt,
		Usage:   "never raise the outer interface above this (1280 to 9000)",
		Comment: `Never raise the outer interface above this.`},
	{Name: "tunnels", Type: TypeList,
		Usage: "tunnel interface names or glob patterns",
		Comment: `Tunnel interfaces to watch: names or glob patterns (links of netlink kind
wireguard are tunnels too). zt* are ZeroTier; the others WireGuard.`},
	{Name: "tunnel", Type: TypeTables,
		Usage: "per-tunnel settings: kind, outer requirement, how to recognise its packets",
		Comment: `Per-tunnel settings, one [[tunnel]] table each, for what wslmtu cannot tell
by itself. name is an interface name or glob (it becomes a tunnel too); kind
is "wireguard", "zerotier" or "other"; kind "other" needs overhead (outer MTU
= tunnel MTU + overhead) or outer_mtu (a fixed requirement); payload is
ZeroTier's physical UDP payload when local.conf sets one; fwmark (a mark or
mark/mask) or port (its UDP source port) identifies the tunnel's own packets
for outer_scope = "tunnel" where wslmtu cannot read them itself.
[[tunnel]]
name = "corp0"
kind = "other"
overhead = 100
fwmark = "0x1000"`},
	{Name: "outer_interface", Type: TypeString,
		Usage:   "the outer interface (default: the one holding the default route)",
		Comment: `The outer interface; empty means the one holding the default route.`},
	{Name: "assume_wsl", Type: TypeBool,
		Usage:   "treat this host as WSL2 even if it is not detected as one",
		Comment: `Treat this host as WSL2 even if it is not detected as one.`},
	{Name: "mss_clamp", Type: TypeBool,
		Usage:   "also clamp the TCP MSS on the tunnels (TCP only)",
		Comment: `Also clamp the TCP MSS on the tunnels (helps TCP only).`},
	{Name: "mss", Type: TypeInt,
		Usage:   "MSS to clamp to (IPv4; IPv6 gets 20 less); 0 computes it from the outer MTU",
		Comment: `The MSS to clamp to (IPv4; IPv6 gets 20 less); 0 computes it from the outer MTU.`},
	{Name: "revert_on_stop", Type: TypeBool,
		Usage:   "put everything back when the agent stops",
		Comment: `Put everything back when the agent stops.`},
	{Name: "state_dir", Type: TypeString,
		Usage:   "where the revert record, the agent's counters and the locks live",
		Comment: `Where the revert record, the agent's counters and the locks live.`},
	{Name: "log_format", Type: TypeString,
		Usage:   "agent log format: text or json",
		Comment: `The agent's log format: "text" or "json".`},
	{Name: "metrics_file", Type: TypeString,
		Usage: "write Prometheus metrics to this file (node_exporter's textfile collector)",
		Comment: `Write the agent's metrics in Prometheus text format to this file, e.g.
"/var/lib/node_exporter/textfile_collector/wslmtu.prom"; empty for none.`},
	{Name: "verify", Type: TypeList,
		Usage: "hosts (IPs or names) whose path the agent proves with DF probes of the size it must carry",
		Comment: `Hosts (IP addresses or names) whose path the agent proves: a tunnel peer, or a
host behind a Windows VPN. For each, DF echoes of exactly the size the path
must carry (the tunnel's MTU through a tunnel, what Windows chose outside
it, what the MSS clamp assumes) are sent after each repair and every
verify_interval; a path that fails while the fix is in force makes the host
unhealthy. Empty: nothing is ever sent.`},
	{Name: "verify_interval", Type: TypeString,
		Usage:   `how often the agent checks the verify hosts (e.g. "15m", jittered ±10%); "0" only after repairs`,
		Comment: `How often the agent checks the verify hosts, jittered by ±10%; "0" checks only after repairs.`},
}

// KeyNames lists the top-level keys, for error messages.
func KeyNames() []string {
	names := make([]string, len(Keys))
	for i, k := range Keys {
		names[i] = k.Name
	}
	return names
}

// Lookup finds a key by its TOML name or its flag name.
func Lookup(name string) (Key, bool) {
	if name == "" {
		return Key{}, false // [[tunnel]] has no flag: "" names no key
	}
	for _, k := range Keys {
		if k.Name == name || k.Flag() == name {
			return k, true
		}
	}
	return Key{}, false
}

// field is the struct field behind a key.
func (c *Config) field(key string) (reflect.Value, bool) {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("toml") == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// Set gives a key a value from the command line: value is a string, int,
// bool or []string according to the key's type. It does not validate; call
// Validate after setting everything.
func (c *Config) Set(key string, value any) error {
	f, ok := c.field(key)
	if !ok {
		return fmt.Errorf("unknown key %q", key)
	}
	v := reflect.ValueOf(value)
	if !v.Type().ConvertibleTo(f.Type()) || v.Kind() != f.Kind() {
		return fmt.Errorf("%s: a %s is not a %s", key, v.Type(), f.Type())
	}
	f.Set(v.Convert(f.Type()))
	return nil
}

// Value renders a key's value as TOML, e.g. `"raise-outer"`, `1500`,
// `["tailscale0", "wg*"]`.
func (c Config) Value(key string) string {
	f, ok := c.field(key)
	if !ok {
		return ""
	}
	switch f.Kind() {
	case reflect.String:
		return strconv.Quote(f.String())
	case reflect.Int:
		return strconv.FormatInt(f.Int(), 10)
	case reflect.Bool:
		return strconv.FormatBool(f.Bool())
	case reflect.Slice:
		if f.Type().Elem().Kind() == reflect.String {
			return quoteList(f.Interface().([]string))
		}
	}
	return ""
}

// DefaultFile is the commented config file that documents every key with
// its default. Keys named in set are written uncommented with cfg's value
// (install.sh's --assume-wsl writes assume_wsl = true that way); the rest
// are comments showing Default()'s values, so uncommenting a line changes
// nothing until its value is edited.
func DefaultFile(cfg Config, set ...string) string {
	def := Default()
	var b strings.Builder
	b.WriteString("# wslmtu configuration. Every key is optional: the commented values are the\n")
	b.WriteString("# defaults. The agent reloads this file when it changes.\n")
	isSet := map[string]bool{}
	for _, s := range set {
		isSet[s] = true
	}
	for _, k := range Keys {
		b.WriteString("\n")
		for _, line := range strings.Split(k.Comment, "\n") {
			b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
		}
		if k.Type == TypeTables {
			continue
		}
		if isSet[k.Name] {
			fmt.Fprintf(&b, "%s = %s\n", k.Name, cfg.Value(k.Name))
		} else {
			fmt.Fprintf(&b, "# %s = %s\n", k.Name, def.Value(k.Name))
		}
	}
	return b.String()
}
