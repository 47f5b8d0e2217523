package windows

import (
	"reflect"
	"testing"
)

func TestDecodeText(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"utf16 no bom": {[]byte{'h', 0, 'i', 0, '\r', 0, '\n', 0}, "hi\r\n"},
		"utf16 bom":    {[]byte{0xff, 0xfe, 0xfc, 0, 'x', 0}, "üx"},
		"utf8":         {[]byte("plain ü"), "plain ü"},
		"utf8 bom":     {[]byte("\xef\xbb\xbf{}"), "{}"},
		"empty":        {nil, ""},
	} {
		if got := DecodeText(tc.in); got != tc.want {
			t.Errorf("%s: got %q, want %q", name, got, tc.want)
		}
	}
}

func TestParseDistros(t *testing.T) {
	got, err := ParseDistros(fixture(t, "wsl_list_verbose.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Distro{
		{Name: "Ubuntu-24.04", State: "Running", Version: 2, Default: true},
		{Name: "docker-desktop", State: "Stopped", Version: 2},
		{Name: "Debian", State: "Running", Version: 2},
		{Name: "Legacy", State: "Stopped", Version: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}

	got, err = ParseDistros(fixture(t, "wsl_list_verbose_de_bom.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want = []Distro{
		{Name: "Ubuntu", State: "Wird ausgeführt", Version: 2, Default: true},
		{Name: "kali-linux", State: "Beendet", Version: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("German: got %+v\nwant %+v", got, want)
	}

	if _, err := ParseDistros(fixture(t, "wsl_list_no_distros.txt")); err == nil {
		t.Error("no distros message: want an error")
	}
	if _, err := ParseDistros([]byte("NAME STATE VERSION\r\n* Ubuntu Running two\r\n")); err == nil {
		t.Error("bad version: want an error")
	}
}

func TestParseRunning(t *testing.T) {
	if got := ParseRunning(fixture(t, "wsl_list_running_quiet.txt")); !reflect.DeepEqual(got, []string{"Ubuntu-24.04", "Debian"}) {
		t.Errorf("got %q", got)
	}
	if got := ParseRunning(fixture(t, "wsl_list_none_running.txt")); len(got) != 0 {
		t.Errorf("none running: got %q", got)
	}
}
