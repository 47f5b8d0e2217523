package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/wslmtu/wslmtu/internal/statefile"
	"github.com/wslmtu/wslmtu/internal/tunnel"
)

// DefaultPath is where the commented default config is installed.
const DefaultPath = "/etc/wslmtu/wslmtu.toml"

// DefaultStateDir holds the revert record, the agent's counters and the locks.
const DefaultStateDir = "/var/lib/wslmtu"

// Strategy says how MTUs are made consistent.
type Strategy string

const (
	// Auto picks per networking mode: raise-outer under a NAT (nat,
	// consomme), lower-tunnel (or MSS clamping) in mirrored mode.
	Auto        Strategy = "auto"
	RaiseOuter  Strategy = "raise-outer"
	LowerTunnel Strategy = "lower-tunnel"
	StrategyOff Strategy = "off"
)

// Strategies lists the allowed values, in the order help texts show them.
var Strategies = []Strategy{Auto, RaiseOuter, LowerTunnel, StrategyOff}

func ParseStrategy(s string) (Strategy, error) {
	for _, known := range Strategies {
		if string(known) == s {
			return known, nil
		}
	}
	return "", fmt.Errorf("unknown mtu strategy %q (allowed: %s)", s, join(Strategies))
}

// UnmarshalText lets the TOML decoder report a bad value with its line.
func (s *Strategy) UnmarshalText(text []byte) error {
	parsed, err := ParseStrategy(string(text))
	if err != nil {
		return err
	}
	*s = parsed
	return nil
}

// Scope says which packets a raised outer interface carries at its new MTU.
type Scope string

const (
	// ScopeTunnel keeps every packet but the tunnel's own at the MTU Windows
	// chose, through a route MTU and policy rules: a Windows VPN that drops
	// larger packets without ICMP then never sees one.
	ScopeTunnel Scope = "tunnel"
	// ScopeAll raises the outer interface for every packet, tunnel or not.
	ScopeAll Scope = "all"
)

// Scopes lists the allowed values.
var Scopes = []Scope{ScopeTunnel, ScopeAll}

func ParseScope(s string) (Scope, error) {
	for _, known := range Scopes {
		if string(known) == s {
			return known, nil
		}
	}
	return "", fmt.Errorf("unknown outer scope %q (allowed: %s)", s, join(Scopes))
}

func (s *Scope) UnmarshalText(text []byte) error {
	parsed, err := ParseScope(string(text))
	if err != nil {
		return err
	}
	*s = parsed
	return nil
}

// MTU limits. IPv6 needs 1280 on every link, so the outer interface is
// never capped below it; 9000 is the largest jumbo frame a Hyper-V vSwitch
// passes.
const (
	MinMTU = tunnel.MinIPv6MTU
	MaxMTU = 9000
)

// MSS limits: 536 is the IPv4 default MSS every host must accept; above 8960
// no MTU we allow could carry it.
const (
	MinMSS = tunnel.MinMSS
	MaxMSS = MaxMTU - 40
)

// LogFormat selects the agent's log encoding.
type LogFormat string

const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

var LogFormats = []LogFormat{LogText, LogJSON}

func ParseLogFormat(s string) (LogFormat, error) {
	for _, known := range LogFormats {
		if string(known) == s {
			return known, nil
		}
	}
	return "", fmt.Errorf("unknown log format %q (allowed: %s)", s, join(LogFormats))
}

func (f *LogFormat) UnmarshalText(text []byte) error {
	parsed, err := ParseLogFormat(string(text))
	if err != nil {
		return err
	}
	*f = parsed
	return nil
}

func join[T ~string](values []T) string {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}

// Config is everything that steers detection, planning and the agent.
type Config struct {
	MTUStrategy    Strategy     `toml:"mtu_strategy"`
	OuterScope     Scope        `toml:"outer_scope"`
	MaxOuterMTU    int          `toml:"max_outer_mtu"`
	Tunnels        []string     `toml:"tunnels"`
	TunnelSettings []TunnelSpec `toml:"tunnel"`
	OuterInterface string       `toml:"outer_interface"`
	AssumeWSL      bool         `toml:"assume_wsl"`
	MSSClamp       bool         `toml:"mss_clamp"`
	MSS            int          `toml:"mss"`
	RevertOnStop   bool         `toml:"revert_on_stop"`
	StateDir       string       `toml:"state_dir"`
	LogFormat      LogFormat    `toml:"log_format"`
	MetricsFile    string       `toml:"metrics_file"`
	Verify         []string     `toml:"verify"`
	VerifyInterval string       `toml:"verify_interval"`
}

// TunnelSpec is a [[tunnel]] table: what wslmtu cannot tell about a tunnel
// by itself — its kind, its outer requirement, how to recognise its packets.
type TunnelSpec struct {
	// Name is an interface name or glob pattern; matching interfaces are
	// tunnels even when `tunnels` does not name them.
	Name string      `toml:"name"`
	Kind tunnel.Kind `toml:"kind"`
	// Overhead (kind other): the outer MTU must be the tunnel MTU + this.
	Overhead int `toml:"overhead"`
	// OuterMTU (kind other): a fixed outer requirement.
	OuterMTU int `toml:"outer_mtu"`
	// Payload (kind zerotier): the physical UDP payload, when local.conf
	// sets one.
	Payload int `toml:"payload"`
	// FwMark ("0x80000" or "0x80000/0xff0000") marks the tunnel's own
	// packets, for outer_scope = "tunnel".
	FwMark string `toml:"fwmark"`
	// Port is the UDP source port of the tunnel's own packets, where they
	// carry no mark.
	Port int `toml:"port"`
}

// Default is the configuration of a host without a config file.
func Default() Config {
	return Config{
		MTUStrategy: Auto,
		OuterScope:  ScopeTunnel,
		MaxOuterMTU: 1500,
		Tunnels:     []string{"tailscale0", "wg*", "wt*", "zt*"},
		StateDir:    DefaultStateDir,
		LogFormat:   LogText,
		// A probe round is a few packets: every quarter hour costs nothing
		// and still tells a broken path before most users notice it.
		VerifyInterval: "15m",
		Verify:         []string{},
	}
}

// VerifyEvery is verify_interval as a duration; 0: only after repairs.
// Validate has checked it, so a bad value here reads as 0.
func (c Config) VerifyEvery() time.Duration {
	d, _ := parseInterval(c.VerifyInterval)
	return d
}

// MinVerifyInterval keeps the probes from becoming traffic of their own.
const MinVerifyInterval = 10 * time.Second

func parseInterval(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinVerifyInterval {
		return 0, fmt.Errorf("%q is not an interval (allowed: \"0\" for only after repairs, or a duration of at least %s, e.g. \"15m\")", s, MinVerifyInterval)
	}
	return d, nil
}

// hostName is a DNS name as RFC 1123 allows it (labels of letters, digits
// and hyphens), so a typo such as "10.0.0.1:80" or "peer host" is caught
// when the config is read, not at the first check.
var hostName = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

// checkVerifyHost says why a verify entry names no single host, or "".
func checkVerifyHost(h string) string {
	if a, err := netip.ParseAddr(h); err == nil {
		switch {
		case a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return fmt.Sprintf("%q names no single host (unspecified, multicast or broadcast)", h)
		case a.Is6() && a.IsLinkLocalUnicast() && a.Zone() == "":
			return fmt.Sprintf("%q is link-local without a zone: name the interface, e.g. %s%%eth0", h, a)
		}
		return ""
	}
	if len(h) > 253 || !hostName.MatchString(h) {
		return fmt.Sprintf("%q is neither an IP address nor a host name", h)
	}
	return ""
}

// IsTunnel says whether an interface name is a tunnel: it matches the
// tunnel patterns or a [[tunnel]] name. lo never is. This is the one tunnel
// matcher; detect adds links whose netlink kind is wireguard.
func (c Config) IsTunnel(name string) bool {
	if name == "lo" {
		return false
	}
	for _, pattern := range c.Tunnels {
		if ok, _ := path.Match(pattern, name); ok {
			return true
		}
	}
	for _, t := range c.TunnelSettings {
		if ok, _ := path.Match(t.Name, name); ok {
			return true
		}
	}
	return false
}

// Pattern is the first tunnel pattern or [[tunnel]] name that selects name,
// for messages; "" when none does.
func (c Config) Pattern(name string) string {
	for _, pattern := range c.Tunnels {
		if ok, _ := path.Match(pattern, name); ok {
			return pattern
		}
	}
	for _, t := range c.TunnelSettings {
		if ok, _ := path.Match(t.Name, name); ok {
			return t.Name
		}
	}
	return ""
}

// TunnelSetting is the first [[tunnel]] table whose name matches, if any.
func (c Config) TunnelSetting(name string) (TunnelSpec, bool) {
	for _, t := range c.TunnelSettings {
		if ok, _ := path.Match(t.Name, name); ok {
			return t, true
		}
	}
	return TunnelSpec{}, false
}

// Spec is how a tunnel needs the outer interface sized: from its [[tunnel]]
// table where one matches, else inferred from its name and link kind.
func (c Config) Spec(name, linkKind string) tunnel.Spec {
	inferred := tunnel.Infer(name, linkKind)
	t, ok := c.TunnelSetting(name)
	if !ok {
		return inferred
	}
	s := tunnel.Spec{Kind: t.Kind, Overhead: t.Overhead, OuterMTU: t.OuterMTU, Payload: t.Payload,
		Source: fmt.Sprintf("[[tunnel]] name = %q", t.Name)}
	if s.Kind == "" {
		s.Kind = inferred.Kind
	}
	return s
}

// Mark is a firewall mark with its mask, as `ip rule` takes them.
type Mark struct {
	Value, Mask uint32
}

func (m Mark) String() string {
	if m.Mask == 0 || m.Mask == 0xffffffff {
		return fmt.Sprintf("0x%x", m.Value)
	}
	return fmt.Sprintf("0x%x/0x%x", m.Value, m.Mask)
}

// ParseMark reads "0x80000" or "0x80000/0xff0000" (decimal works too).
func ParseMark(s string) (Mark, error) {
	v, m, hasMask := strings.Cut(s, "/")
	value, err := strconv.ParseUint(strings.TrimSpace(v), 0, 32)
	if err != nil || value == 0 {
		return Mark{}, fmt.Errorf("%q is not a firewall mark (e.g. \"0x80000\" or \"0x80000/0xff0000\"; not 0)", s)
	}
	mark := Mark{Value: uint32(value), Mask: 0xffffffff}
	if hasMask {
		mask, err := strconv.ParseUint(strings.TrimSpace(m), 0, 32)
		if err != nil || mask == 0 || uint32(value)&^uint32(mask) != 0 {
			return Mark{}, fmt.Errorf("%q: the mask must be non-zero and cover the mark", s)
		}
		mark.Mask = uint32(mask)
	}
	return mark, nil
}

// Error names the file and line of a bad setting.
type Error struct {
	File string
	Line int // 0 when the problem is not tied to one line
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ErrMissing marks a config file that does not exist.
var ErrMissing = errors.New("config file does not exist")

// Load reads the file at path over the defaults. A missing file means
// defaults, because a fresh install works without one; a symlink that leads
// nowhere, a FIFO, a device or a huge file is an error.
func Load(path string) (Config, error) {
	cfg, err := Reload(path)
	if errors.Is(err, ErrMissing) {
		return Default(), nil
	}
	return cfg, err
}

// Reload is Load for a running agent: a missing file is an error matching
// ErrMissing, so the agent keeps the config it has rather than falling back
// to the defaults while an editor replaces the file.
func Reload(path string) (Config, error) {
	data, err := statefile.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("%s: %w", path, ErrMissing)
	}
	if err != nil {
		return Config{}, &Error{File: path, Msg: err.Error()}
	}
	return Parse(path, data)
}

// Parse decodes data (read from file, named in errors) over the defaults.
func Parse(file string, data []byte) (Config, error) {
	cfg := Default()
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if pe.LastKey != "" {
				msg = pe.LastKey + ": " + msg
			}
			return Config{}, &Error{File: file, Line: pe.Position.Line, Msg: msg}
		}
		// Type mismatches come as plain errors that carry the line in their text.
		if m := typeErrorText.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return Config{}, &Error{File: file, Line: line, Msg: m[2] + ": " + m[3]}
		}
		return Config{}, &Error{File: file, Msg: err.Error()}
	}
	// The decoder matches keys case-insensitively, so MSS_CLAMP would quietly
	// set mss_clamp: only the exact spelling is a key.
	for _, key := range md.Keys() {
		if err := checkKey(key); err != "" {
			return Config{}, &Error{File: file, Line: lineOfKey(data, key, 1), Msg: err}
		}
	}
	if err := cfg.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return Config{}, &Error{File: file, Line: lineOfField(data, fe), Msg: fe.Error()}
		}
		return Config{}, &Error{File: file, Msg: err.Error()}
	}
	return cfg, nil
}

// checkKey returns why a decoded key is not one of ours, or "".
func checkKey(key toml.Key) string {
	known := KeyNames()
	if len(key) == 2 && key[0] == "tunnel" {
		known = tunnelKeyNames
	} else if len(key) != 1 {
		return fmt.Sprintf("unknown key %q (allowed: %s)", key.String(), strings.Join(KeyNames(), ", "))
	}
	name := key[len(key)-1]
	for _, k := range known {
		if k == name {
			return ""
		}
	}
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return fmt.Sprintf("unknown key %q: keys are lowercase (%s)", key.String(), strings.Join(append(key[:len(key)-1:len(key)-1], k), "."))
		}
	}
	return fmt.Sprintf("unknown key %q (allowed: %s)", key.String(), strings.Join(known, ", "))
}

var tunnelKeyNames = []string{"name", "kind", "overhead", "outer_mtu", "payload", "fwmark", "port"}

// FieldError is a bad value of one setting, named by its config key
// ("tunnel.port" for a key of a [[tunnel]] table).
type FieldError struct {
	Key string
	Msg string
	// Table is the 1-based [[tunnel]] table the key belongs to, 0 for a
	// top-level key.
	Table int
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

var typeErrorText = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

var interfaceName = regexp.MustCompile(`^[^/\s:]{1,15}$`)

// Validate checks ranges and names; flags are validated by the same code.
func (c Config) Validate() error {
	if _, err := ParseStrategy(string(c.MTUStrategy)); err != nil {
		return &FieldError{Key: "mtu_strategy", Msg: err.Error()}
	}
	if _, err := ParseScope(string(c.OuterScope)); err != nil {
		return &FieldError{Key: "outer_scope", Msg: err.Error()}
	}
	if c.MaxOuterMTU < MinMTU || c.MaxOuterMTU > MaxMTU {
		return &FieldError{Key: "max_outer_mtu",
			Msg: fmt.Sprintf("%d is out of range (allowed: %d to %d)", c.MaxOuterMTU, MinMTU, MaxMTU)}
	}
	if c.MSS != 0 && (c.MSS < MinMSS || c.MSS > MaxMSS) {
		return &FieldError{Key: "mss",
			Msg: fmt.Sprintf("%d is out of range (allowed: 0 for automatic, or %d to %d)", c.MSS, MinMSS, MaxMSS)}
	}
	if len(c.Tunnels) == 0 && len(c.TunnelSettings) == 0 {
		return &FieldError{Key: "tunnels", Msg: fmt.Sprintf("must name at least one tunnel interface or pattern (default: %s)", quoteList(Default().Tunnels))}
	}
	for _, pattern := range c.Tunnels {
		if err := checkPattern(pattern); err != "" {
			return &FieldError{Key: "tunnels", Msg: err}
		}
	}
	for i, t := range c.TunnelSettings {
		if err := t.validate(); err != nil {
			err.Table = i + 1
			return err
		}
	}
	if c.OuterInterface != "" {
		switch {
		case !interfaceName.MatchString(c.OuterInterface):
			return &FieldError{Key: "outer_interface", Msg: fmt.Sprintf("%q is not an interface name", c.OuterInterface)}
		case c.OuterInterface == "lo":
			return &FieldError{Key: "outer_interface", Msg: `"lo" is the loopback interface: it carries no tunnel`}
		case c.IsTunnel(c.OuterInterface):
			return &FieldError{Key: "outer_interface", Msg: fmt.Sprintf("%q is a tunnel (it matches the tunnel pattern %q): the outer interface carries the tunnels, it is never one",
				c.OuterInterface, c.Pattern(c.OuterInterface))}
		}
	}
	if c.StateDir == "" || !strings.HasPrefix(c.StateDir, "/") {
		return &FieldError{Key: "state_dir", Msg: fmt.Sprintf("%q must be an absolute path", c.StateDir)}
	}
	if _, err := ParseLogFormat(string(c.LogFormat)); err != nil {
		return &FieldError{Key: "log_format", Msg: err.Error()}
	}
	if c.MetricsFile != "" && (!strings.HasPrefix(c.MetricsFile, "/") || strings.HasSuffix(c.MetricsFile, "/")) {
		return &FieldError{Key: "metrics_file", Msg: fmt.Sprintf("%q must be an absolute file path (or empty for none)", c.MetricsFile)}
	}
	seen := map[string]bool{}
	for _, h := range c.Verify {
		if err := checkVerifyHost(h); err != "" {
			return &FieldError{Key: "verify", Msg: err}
		}
		if seen[h] {
			return &FieldError{Key: "verify", Msg: fmt.Sprintf("%q is listed twice", h)}
		}
		seen[h] = true
	}
	if _, err := parseInterval(c.VerifyInterval); err != nil {
		return &FieldError{Key: "verify_interval", Msg: err.Error()}
	}
	return nil
}

// checkPattern: a tunnel pattern must be an interface name or glob, and
// never select lo, which would lower (and strip the IPv6 address ::1 of)
// the loopback interface.
func checkPattern(pattern string) string {
	if _, err := path.Match(pattern, ""); err != nil || !interfaceName.MatchString(pattern) {
		return fmt.Sprintf("%q is not an interface name or glob pattern", pattern)
	}
	if ok, _ := path.Match(pattern, "lo"); ok {
		return fmt.Sprintf("%q selects lo, the loopback interface, which is never a tunnel", pattern)
	}
	return ""
}

func (t TunnelSpec) validate() *FieldError {
	bad := func(key, msg string) *FieldError { return &FieldError{Key: "tunnel." + key, Msg: msg} }
	if t.Name == "" {
		return bad("name", "every [[tunnel]] needs a name (an interface name or glob pattern)")
	}
	if err := checkPattern(t.Name); err != "" {
		return bad("name", err)
	}
	kind := t.Kind
	if kind != "" {
		if _, err := tunnel.ParseKind(string(kind)); err != nil {
			return bad("kind", err.Error())
		}
	}
	switch {
	case t.Overhead < 0 || t.Overhead > 1000:
		return bad("overhead", fmt.Sprintf("%d is out of range (allowed: 1 to 1000)", t.Overhead))
	case t.OuterMTU != 0 && (t.OuterMTU < tunnel.MinIPv4MTU || t.OuterMTU > MaxMTU):
		return bad("outer_mtu", fmt.Sprintf("%d is out of range (allowed: %d to %d)", t.OuterMTU, tunnel.MinIPv4MTU, MaxMTU))
	case t.Payload != 0 && (t.Payload < tunnel.ZeroTierMinPayload || t.Payload > tunnel.ZeroTierMaxPayload):
		return bad("payload", fmt.Sprintf("%d is out of range (allowed: %d to %d, as zerotier-one's local.conf)", t.Payload, tunnel.ZeroTierMinPayload, tunnel.ZeroTierMaxPayload))
	case t.Port < 0 || t.Port > 65535:
		return bad("port", fmt.Sprintf("%d is not a UDP port (1 to 65535)", t.Port))
	case (t.Overhead != 0 || t.OuterMTU != 0) && kind != tunnel.Other:
		return bad("kind", fmt.Sprintf("overhead and outer_mtu go with kind = \"other\" (%s)", t.Name))
	case kind == tunnel.Other && t.Overhead == 0 && t.OuterMTU == 0:
		return bad("kind", fmt.Sprintf("kind = \"other\" needs overhead or outer_mtu (%s)", t.Name))
	case t.Payload != 0 && kind != tunnel.ZeroTier:
		return bad("payload", fmt.Sprintf("payload goes with kind = \"zerotier\" (%s)", t.Name))
	}
	if t.FwMark != "" {
		if _, err := ParseMark(t.FwMark); err != nil {
			return bad("fwmark", err.Error())
		}
	}
	return nil
}

// lineOfField is where a bad value is set: its key's line, or for a key
// missing from a [[tunnel]] table, that table's header.
func lineOfField(data []byte, fe *FieldError) int {
	key := toml.Key(strings.Split(fe.Key, "."))
	table := max(fe.Table, 1)
	if line := lineOfKey(data, key, table); line > 0 {
		return line
	}
	if len(key) > 1 {
		return lineOfKey(data, key[:len(key)-1], table)
	}
	return 0
}

// lineOfKey finds where a key is set (in the n-th table of its array of
// tables, for a key like tunnel.port); the TOML library keeps key positions
// private, and a message without a line sends users hunting.
func lineOfKey(data []byte, key toml.Key, n int) int {
	if len(key) == 0 {
		return 0
	}
	bare := key[len(key)-1]
	assign := regexp.MustCompile(`^\s*["']?` + regexp.QuoteMeta(bare) + `["']?\s*=`)
	header := func(k toml.Key) *regexp.Regexp {
		return regexp.MustCompile(`^\s*\[+\s*` + regexp.QuoteMeta(k.String()) + `\s*\]+`)
	}
	lines := strings.Split(string(data), "\n")
	if len(key) == 1 {
		table := header(key)
		for i, line := range lines {
			if table.MatchString(line) {
				n--
				if n == 0 {
					return i + 1
				}
				continue
			}
			if assign.MatchString(line) && !inTable(lines[:i]) {
				return i + 1
			}
		}
		return 0
	}
	parent := header(key[:len(key)-1])
	seen := 0
	for i, line := range lines {
		switch {
		case parent.MatchString(line):
			seen++
		case seen == n && strings.HasPrefix(strings.TrimSpace(line), "["):
			return 0 // the next table: the key is not in this one
		case seen == n && assign.MatchString(line):
			return i + 1
		}
	}
	return 0
}

// inTable says whether the lines so far have opened a table, after which a
// bare key belongs to that table, not to the top level.
func inTable(before []string) bool {
	for _, line := range before {
		if strings.HasPrefix(strings.TrimSpace(line), "[") {
			return true
		}
	}
	return false
}

// Describe renders the config as the TOML lines it is equivalent to, for
// status and the agent's log.
func (c Config) Describe() string {
	s := fmt.Sprintf("mtu_strategy = %q, outer_scope = %q, max_outer_mtu = %d, tunnels = %s, mss_clamp = %s",
		c.MTUStrategy, c.OuterScope, c.MaxOuterMTU, quoteList(c.Tunnels), strconv.FormatBool(c.MSSClamp))
	for _, t := range c.TunnelSettings {
		s += fmt.Sprintf(", [[tunnel]] name = %q", t.Name)
	}
	return s
}

func quoteList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
