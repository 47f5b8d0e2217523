// Package config reads wslmtu.toml. Its keys are the long names of the CLI
// flags with '-' written as '_', so the README documents both at once.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where install.sh writes the commented default config.
const DefaultPath = "/etc/wslmtu/wslmtu.toml"

// DefaultStateDir holds the revert record, the agent's counters and the lock.
const DefaultStateDir = "/var/lib/wslmtu"

// Strategy says how MTUs are made consistent.
type Strategy string

const (
	RaiseOuter  Strategy = "raise-outer"
	LowerTunnel Strategy = "lower-tunnel"
	StrategyOff Strategy = "off"
)

// Strategies lists the allowed values, in the order help texts show them.
var Strategies = []Strategy{RaiseOuter, LowerTunnel, StrategyOff}

func ParseStrategy(s string) (Strategy, error) {
	for _, known := range Strategies {
		if string(known) == s {
			return known, nil
		}
	}
	return "", fmt.Errorf("unknown mtu strategy %q (allowed: %s)", s, strategyList())
}

func strategyList() string {
	names := make([]string, len(Strategies))
	for i, s := range Strategies {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
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

// MTU limits. IPv6 needs 1280 on every link, so no interface wslmtu manages
// is allowed below it; 9000 is the largest jumbo frame a Hyper-V vSwitch passes.
const (
	MinMTU = 1280
	MaxMTU = 9000
)

// MSS limits: 536 is the IPv4 default MSS every host must accept; above 8960
// no MTU we allow could carry it.
const (
	MinMSS = 536
	MaxMSS = MaxMTU - 40
)

// LogFormat selects the agent's log encoding.
type LogFormat string

const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

func ParseLogFormat(s string) (LogFormat, error) {
	switch LogFormat(s) {
	case LogText, LogJSON:
		return LogFormat(s), nil
	}
	return "", fmt.Errorf("unknown log format %q (allowed: text, json)", s)
}

func (f *LogFormat) UnmarshalText(text []byte) error {
	parsed, err := ParseLogFormat(string(text))
	if err != nil {
		return err
	}
	*f = parsed
	return nil
}

// Config is everything that steers detection, planning and the agent.
type Config struct {
	MTUStrategy    Strategy  `toml:"mtu_strategy"`
	MaxOuterMTU    int       `toml:"max_outer_mtu"`
	Tunnels        []string  `toml:"tunnels"`
	OuterInterface string    `toml:"outer_interface"`
	AssumeWSL      bool      `toml:"assume_wsl"`
	MSSClamp       bool      `toml:"mss_clamp"`
	MSS            int       `toml:"mss"`
	RevertOnStop   bool      `toml:"revert_on_stop"`
	StateDir       string    `toml:"state_dir"`
	LogFormat      LogFormat `toml:"log_format"`
}

// Default is the configuration of a host without a config file.
func Default() Config {
	return Config{
		MTUStrategy: RaiseOuter,
		MaxOuterMTU: 1500,
		Tunnels:     []string{"tailscale0", "wg*"},
		StateDir:    DefaultStateDir,
		LogFormat:   LogText,
	}
}

// IsTunnel says whether an interface name matches the tunnel patterns.
func (c Config) IsTunnel(name string) bool {
	for _, pattern := range c.Tunnels {
		if ok, _ := path.Match(pattern, name); ok {
			return true
		}
	}
	return false
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

// Load reads the file at path over the defaults. A missing file means
// defaults, because a fresh install works without one.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return Config{}, err
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
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		key := undecoded[0].String()
		return Config{}, &Error{File: file, Line: lineOfKey(data, key),
			Msg: fmt.Sprintf("unknown key %q (allowed: %s)", key, strings.Join(Keys(), ", "))}
	}
	if err := cfg.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return Config{}, &Error{File: file, Line: lineOfKey(data, fe.Key), Msg: fe.Error()}
		}
		return Config{}, &Error{File: file, Msg: err.Error()}
	}
	return cfg, nil
}

// Keys lists the config keys, for error messages.
func Keys() []string {
	return []string{"mtu_strategy", "max_outer_mtu", "tunnels", "outer_interface", "assume_wsl",
		"mss_clamp", "mss", "revert_on_stop", "state_dir", "log_format"}
}

// FieldError is a bad value of one setting, named by its config key.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

var typeErrorText = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

var interfaceName = regexp.MustCompile(`^[^/\s:]{1,15}$`)

// Validate checks ranges and names; flags are validated by the same code.
func (c Config) Validate() error {
	if _, err := ParseStrategy(string(c.MTUStrategy)); err != nil {
		return &FieldError{Key: "mtu_strategy", Msg: err.Error()}
	}
	if c.MaxOuterMTU < MinMTU || c.MaxOuterMTU > MaxMTU {
		return &FieldError{Key: "max_outer_mtu",
			Msg: fmt.Sprintf("%d is out of range (allowed: %d to %d)", c.MaxOuterMTU, MinMTU, MaxMTU)}
	}
	if c.MSS != 0 && (c.MSS < MinMSS || c.MSS > MaxMSS) {
		return &FieldError{Key: "mss",
			Msg: fmt.Sprintf("%d is out of range (allowed: 0 for automatic, or %d to %d)", c.MSS, MinMSS, MaxMSS)}
	}
	if len(c.Tunnels) == 0 {
		return &FieldError{Key: "tunnels", Msg: `must name at least one tunnel interface or pattern (default: ["tailscale0", "wg*"])`}
	}
	for _, pattern := range c.Tunnels {
		if _, err := path.Match(pattern, ""); err != nil || !interfaceName.MatchString(pattern) {
			return &FieldError{Key: "tunnels", Msg: fmt.Sprintf("%q is not an interface name or glob pattern", pattern)}
		}
	}
	if c.OuterInterface != "" && !interfaceName.MatchString(c.OuterInterface) {
		return &FieldError{Key: "outer_interface", Msg: fmt.Sprintf("%q is not an interface name", c.OuterInterface)}
	}
	if c.StateDir == "" || !strings.HasPrefix(c.StateDir, "/") {
		return &FieldError{Key: "state_dir", Msg: fmt.Sprintf("%q must be an absolute path", c.StateDir)}
	}
	if _, err := ParseLogFormat(string(c.LogFormat)); err != nil {
		return &FieldError{Key: "log_format", Msg: err.Error()}
	}
	return nil
}

// lineOfKey finds where a key is set; the TOML library keeps key positions
// private, and a message without a line sends users hunting.
func lineOfKey(data []byte, key string) int {
	bare := key
	if i := strings.LastIndex(key, "."); i >= 0 {
		bare = key[i+1:]
	}
	re := regexp.MustCompile(`^\s*["']?` + regexp.QuoteMeta(bare) + `["']?\s*=`)
	table := regexp.MustCompile(`^\s*\[+\s*` + regexp.QuoteMeta(key) + `\s*\]+`)
	for i, line := range strings.Split(string(data), "\n") {
		if re.MatchString(line) || table.MatchString(line) {
			return i + 1
		}
	}
	return 0
}

// Describe renders the config as the TOML lines it is equivalent to, for status.
func (c Config) Describe() string {
	return fmt.Sprintf("mtu_strategy = %q, max_outer_mtu = %d, tunnels = %s, mss_clamp = %s",
		c.MTUStrategy, c.MaxOuterMTU, quoteList(c.Tunnels), strconv.FormatBool(c.MSSClamp))
}

func quoteList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
