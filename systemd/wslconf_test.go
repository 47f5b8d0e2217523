package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const testOurs = "nohup /usr/local/bin/wslmtu run >>/var/log/wslmtu.log 2>&1 &"

func fixtures(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/wslconf/*.conf")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	m := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(p)] = b
	}
	return m
}

func TestBootCommandRoundTrip(t *testing.T) {
	for name, orig := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			before, err := scanBoot(orig)
			if err != nil {
				t.Fatal(err)
			}
			added, changed, err := AddBootCommand(orig, true, testOurs)
			if err != nil || !changed {
				t.Fatalf("add: changed=%v err=%v", changed, err)
			}
			if !HasBootCommand(added, testOurs) {
				t.Fatalf("our command is not the [boot] command:\n%s", added)
			}
			after, err := scanBoot(added)
			if err != nil {
				t.Fatal(err)
			}
			if before.command != nil && !strings.HasSuffix(after.cmdVal, before.cmdVal) {
				t.Errorf("user's command %q lost: now %q", before.cmdVal, after.cmdVal)
			}
			if after.systemd != before.systemd {
				t.Errorf("systemd= changed from %v to %v", before.systemd, after.systemd)
			}
			// WSL hands the value to sh: it must still parse.
			if out, err := exec.Command("sh", "-n", "-c", after.cmdVal).CombinedOutput(); err != nil {
				t.Errorf("sh -n %q: %v %s", after.cmdVal, err, out)
			}
			if strings.Contains(string(orig), "\r\n") && strings.Count(string(added), "\n") != strings.Count(string(added), "\r\n") {
				t.Errorf("mixed line endings after add:\n%q", added)
			}
			again, changed, err := AddBootCommand(added, true, testOurs)
			if err != nil || changed || string(again) != string(added) {
				t.Fatalf("second add not a no-op: changed=%v err=%v\n%s", changed, err, again)
			}
			removed, changed, remove, err := RemoveBootCommand(added, testOurs)
			if err != nil || !changed || remove {
				t.Fatalf("remove: changed=%v remove=%v err=%v", changed, remove, err)
			}
			if string(removed) != string(orig) {
				t.Fatalf("not restored byte for byte:\nwant %q\ngot  %q", orig, removed)
			}
			if _, changed, _, _ := RemoveBootCommand(removed, testOurs); changed {
				t.Errorf("second remove changed the file")
			}
		})
	}
}

func TestAddBootCommandText(t *testing.T) {
	f := fixtures(t)
	for _, tc := range []struct{ fixture, want string }{
		{"existing-command.conf", "[boot]\ncommand = " + testOurs + " service docker start\n[network]\n"},
		{"existing-command-quoted.conf", "command = \"" + testOurs + " mount --make-rshared / && service cron start &\"\n"},
		{"crlf-command.conf", "[boot]\r\ncommand=\"" + testOurs + " ip link set dev eth0 mtu 1500\"\r\n"},
		{"empty-command.conf", "[boot]\ncommand =" + testOurs + "\n"},
		{"boot-empty.conf", "[boot]\n" + bootMarker + "\ncommand = " + testOurs + "\n# command = service docker start\n\n[interop]"},
		{"boot-header-last.conf", "default = bob\n[boot]\n" + bootMarker + "\ncommand = " + testOurs},
		{"no-boot.conf", "appendWindowsPath = false\n\n" + bootMarker + "\n[boot]\ncommand = " + testOurs + "\n"},
		{"no-final-newline.conf", "appendWindowsPath=false\n\n" + bootMarker + "\n[boot]\ncommand = " + testOurs},
		{"empty.conf", bootMarker + "\n[boot]\ncommand = " + testOurs},
	} {
		out, _, err := AddBootCommand(f[tc.fixture], true, testOurs)
		if err != nil {
			t.Fatalf("%s: %v", tc.fixture, err)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: want it to contain\n%q\ngot\n%q", tc.fixture, tc.want, out)
		}
	}
}

func TestBootCommandMissingFile(t *testing.T) {
	out, changed, err := AddBootCommand(nil, false, testOurs)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if !strings.HasPrefix(string(out), bootMarkerCreated) || !HasBootCommand(out, testOurs) {
		t.Fatalf("created file:\n%s", out)
	}
	_, changed, remove, err := RemoveBootCommand(out, testOurs)
	if err != nil || !changed || !remove {
		t.Fatalf("want the created file deleted: changed=%v remove=%v err=%v", changed, remove, err)
	}
}

func TestRemoveBootCommandAfterUserEdits(t *testing.T) {
	orig := fixtures(t)["existing-command.conf"]
	added, _, _ := AddBootCommand(orig, true, testOurs)
	edited := strings.Replace(string(added), "[network]\n", "[network]\nhostname = changed\n", 1)
	removed, changed, _, err := RemoveBootCommand([]byte(edited), testOurs)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	want := strings.Replace(string(orig), "[network]\n", "[network]\nhostname = changed\n", 1)
	if string(removed) != want {
		t.Fatalf("want\n%q\ngot\n%q", want, removed)
	}

	// The marker line deleted by hand: our command line still goes.
	orig = fixtures(t)["boot-empty.conf"]
	added, _, _ = AddBootCommand(orig, true, testOurs)
	edited = strings.Replace(string(added), bootMarker+"\n", "", 1)
	removed, changed, _, err = RemoveBootCommand([]byte(edited), testOurs)
	if err != nil || !changed || HasBootCommand(removed, testOurs) {
		t.Fatalf("changed=%v err=%v\n%s", changed, err, removed)
	}
}

func TestRemoveBootCommandLeavesOthersAlone(t *testing.T) {
	for name, orig := range fixtures(t) {
		out, changed, remove, err := RemoveBootCommand(orig, testOurs)
		if err != nil || changed || remove || string(out) != string(orig) {
			t.Errorf("%s: changed=%v remove=%v err=%v", name, changed, remove, err)
		}
	}
}

func TestBootCommandBadInput(t *testing.T) {
	_, _, err := AddBootCommand([]byte("[boot]\ncommand = \"unterminated\n"), true, testOurs)
	if err == nil || !strings.Contains(err.Error(), "unterminated quote") || !strings.Contains(err.Error(), "command") {
		t.Fatalf("want an error naming the unterminated quote of command, got %v", err)
	}
	_, _, err = AddBootCommand(nil, false, "x # y")
	if err == nil || !strings.Contains(err.Error(), "x # y") {
		t.Fatalf("want an error naming the bad command, got %v", err)
	}
}

func TestSystemdEnabled(t *testing.T) {
	f := fixtures(t)
	if !SystemdEnabled(f["boot-systemd.conf"]) {
		t.Error("boot-systemd.conf: want systemd enabled")
	}
	for _, n := range []string{"no-boot.conf", "existing-command.conf", "empty.conf"} {
		if SystemdEnabled(f[n]) {
			t.Errorf("%s: want systemd not enabled", n)
		}
	}
	// systemd outside [boot] means nothing.
	if SystemdEnabled([]byte("[network]\nsystemd=true\n")) {
		t.Error("systemd=true outside [boot] counted")
	}
}

func TestUnitBinaryPath(t *testing.T) {
	if !strings.Contains(Unit(""), "ExecStart=/usr/local/bin/wslmtu run\n") {
		t.Fatal("default unit lacks ExecStart")
	}
	u := Unit("/opt/wslmtu/bin/wslmtu")
	if !strings.Contains(u, "ExecStart=/opt/wslmtu/bin/wslmtu run\n") || strings.Contains(u, "/usr/local/bin/wslmtu run") {
		t.Fatalf("binary not substituted:\n%s", u)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "WantedBy=multi-user.target", "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW"} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %s", want)
		}
	}
}
