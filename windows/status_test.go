package windows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func hostFake(t *testing.T) *fakeRunner {
	return &fakeRunner{interfaces: tailscaleHost(), answers: map[string]fakeAnswer{
		"wsl.exe --list --verbose":         {out: fixture(t, "wsl_list_verbose.txt")},
		"wsl.exe --list --running --quiet": {out: fixture(t, "wsl_list_running_quiet.txt")},
		"wsl.exe --distribution Ubuntu-24.04 --user root -- wslmtu status --json": {
			out: []byte(`{"eth0":{"mtu":1280},"healthy":false}` + "\n"), err: exitErr(3, "")},
		"wsl.exe --distribution Debian --user root -- wslmtu status --json": {
			err: exitErr(1, "execvpe(wslmtu) failed: No such file or directory\n")},
	}}
}

func TestWindowsStatus(t *testing.T) {
	r := hostFake(t)
	h, err := Status(context.Background(), r, r)
	if err != nil {
		t.Fatal(err)
	}
	sameCalls(t, r.Calls(), []string{
		"GetIpInterfaceTable(AF_UNSPEC)",
		"wsl.exe --list --verbose",
		"wsl.exe --list --running --quiet",
		"wsl.exe --distribution Ubuntu-24.04 --user root -- wslmtu status --json",
		"wsl.exe --distribution Debian --user root -- wslmtu status --json",
	})
	if h.Outer == nil || h.Outer.Adapter.Name != "Tailscale" {
		t.Errorf("outer %+v", h.Outer)
	}
	states := map[string]string{}
	for _, a := range h.Agents {
		states[a.Distro] = a.State
	}
	want := map[string]string{"Ubuntu-24.04": AgentUnhealthy, "docker-desktop": AgentNotRunning, "Debian": AgentNotInstalled, "Legacy": AgentNotWSL2}
	for k, v := range want {
		if states[k] != v {
			t.Errorf("%s: state %q, want %q", k, states[k], v)
		}
	}
	if !h.Unhealthy() {
		t.Error("agent exit 3 should make the host unhealthy")
	}
	if !json.Valid(h.Agents[0].Report) {
		t.Errorf("report %s", h.Agents[0].Report)
	}
	if _, err := json.Marshal(h); err != nil {
		t.Error(err)
	}
}

func TestWindowsStatusTolerates(t *testing.T) {
	r := hostFake(t)
	r.answers["wsl.exe --list --running --quiet"] = fakeAnswer{out: fixture(t, "wsl_list_none_running.txt"), err: exitErr(-1, "")}
	h, err := Status(context.Background(), r, r)
	if err != nil {
		t.Fatal(err)
	}
	if h.Outer == nil || len(h.Notes) != 0 {
		t.Errorf("notes %q outer %+v", h.Notes, h.Outer)
	}
	for _, a := range h.Agents {
		if a.State == AgentOK || a.State == AgentUnhealthy {
			t.Errorf("%s queried although nothing runs", a.Distro)
		}
	}
	for _, c := range r.Calls() {
		if strings.Contains(c, "status --json") {
			t.Errorf("started a stopped distro: %s", c)
		}
	}

	r = hostFake(t)
	r.answers["wsl.exe --list --verbose"] = fakeAnswer{out: fixture(t, "wsl_list_no_distros.txt"), err: exitErr(-1, "")}
	h, err = Status(context.Background(), r, r)
	if err != nil || len(h.Distros) != 0 || len(h.Notes) == 0 {
		t.Errorf("no distros: %+v %v", h, err)
	}

	r = hostFake(t)
	r.interfaces, r.interfacesErr = nil, errors.New("GetIpInterfaceTable: Access is denied.")
	if _, err := Status(context.Background(), r, r); err == nil || !strings.Contains(err.Error(), "IP interface table: GetIpInterfaceTable: Access is denied.") {
		t.Errorf("an unreadable interface table must be an error naming it: %v", err)
	}
	sameCalls(t, r.Calls(), []string{"GetIpInterfaceTable(AF_UNSPEC)"})

	// Every adapter down: no adapter sets eth0, and the note says why.
	r = hostFake(t)
	r.interfaces = []IPInterface{lo("ipv4"), lo("ipv6"), row(12, "Wi-Fi", "ipv4", 1500, false)}
	h, err = Status(context.Background(), r, r)
	if err != nil || h.Outer != nil || len(h.Notes) != 1 || !strings.Contains(h.Notes[0], "only Loopback Pseudo-Interface 1 is connected") {
		t.Errorf("loopback only: outer %+v notes %q err %v", h.Outer, h.Notes, err)
	}
}
