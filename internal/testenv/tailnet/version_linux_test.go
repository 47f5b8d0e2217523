package tailnet

import (
	"strings"
	"testing"
)

// The release under test is go.mod's unless WSLMTU_TAILSCALE_VERSION names
// another; anything but a release is refused by name.
func TestTailscaleVersion(t *testing.T) {
	pinned, err := pinnedVersion()
	if err != nil || !releaseRE.MatchString(pinned) {
		t.Fatalf("pinnedVersion() = %q, %v; want go.mod's tailscale.com release", pinned, err)
	}
	for _, tc := range []struct{ env, want, err string }{
		{"", pinned, ""},
		{"v1.100.0", "v1.100.0", ""},
		{"1.100.0", "", `WSLMTU_TAILSCALE_VERSION="1.100.0" is not a release`},
		{"latest", "", `WSLMTU_TAILSCALE_VERSION="latest" is not a release`},
	} {
		t.Setenv(versionEnv, tc.env)
		got, err := tailscaleVersion()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s=%q: got %q, %v; want an error containing %q", versionEnv, tc.env, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s=%q: got %q, %v; want %q", versionEnv, tc.env, got, err, tc.want)
		}
	}
}
