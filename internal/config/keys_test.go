package config

import (
	"reflect"
	"strings"
	"testing"
)

// Each key's flag and its default rendered as TOML, in the order Keys lists
// them: the flags, --help and the default file all read these.
func TestKeysFlagsAndDefaultValues(t *testing.T) {
	var got []string
	def := Default()
	for _, k := range Keys {
		got = append(got, k.Name+" --"+k.Flag()+" "+def.Value(k.Name))
	}
	want := []string{
		`mtu_strategy --mtu-strategy "auto"`,
		`outer_scope --outer-scope "tunnel"`,
		`max_outer_mtu --max-outer-mtu 1500`,
		`tunnels --tunnels ["tailscale0", "wg*", "wt*", "zt*"]`,
		`tunnel -- `,
		`outer_interface --outer-interface ""`,
		`assume_wsl --assume-wsl false`,
		`mss_clamp --mss-clamp false`,
		`mss --mss 0`,
		`revert_on_stop --revert-on-stop false`,
		`state_dir --state-dir "/var/lib/wslmtu"`,
		`log_format --log-format "text"`,
		`metrics_file --metrics-file ""`,
		`verify --verify []`,
		`verify_interval --verify-interval "15m"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if v := def.Value("no_such_key"); v != "" {
		t.Errorf("Value of an unknown key = %q, want \"\"", v)
	}
}

func TestLookupByNameOrFlag(t *testing.T) {
	for _, name := range []string{"max_outer_mtu", "max-outer-mtu"} {
		if k, ok := Lookup(name); !ok || k.Name != "max_outer_mtu" {
			t.Errorf("Lookup(%q) = %+v, %v", name, k, ok)
		}
	}
	for _, name := range []string{"max-outer_mtu", "MAX_OUTER_MTU", "tunnels-", ""} {
		if k, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) found %+v", name, k)
		}
	}
}

func TestSetRefusesWhatItCannotSet(t *testing.T) {
	c := Default()
	for _, tt := range []struct {
		key   string
		value any
		err   string
	}{
		{"no_such_key", 1, `unknown key "no_such_key"`},
		{"mss", "12", "mss: a string is not a int"},
		{"mss_clamp", 1, "mss_clamp: a int is not a bool"},
		{"tunnels", "wg0", "tunnels: a string is not a []string"},
	} {
		err := c.Set(tt.key, tt.value)
		if err == nil || err.Error() != tt.err {
			t.Errorf("Set(%s, %#v) = %v, want %q", tt.key, tt.value, err, tt.err)
		}
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("a refused Set changed the config: %+v", c)
	}
	if err := c.Set("mtu_strategy", "raise-outer"); err != nil || c.MTUStrategy != RaiseOuter {
		t.Errorf("a string converts to the key's string type: %v, %q", err, c.MTUStrategy)
	}
}
