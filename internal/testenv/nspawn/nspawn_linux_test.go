package nspawn

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestBootRunCopyClose(t *testing.T) {
	c := Boot(t)
	t.Logf("boot time %v (container %s, init pid %d)", c.BootTime, c.Name, c.PID)

	if got := strings.TrimSpace(c.Run(t, "cat", "/proc/1/comm")); got != "systemd" {
		t.Fatalf("PID 1 inside is %q, want systemd", got)
	}
	// --private-network: only lo, never the host's interfaces.
	links := c.Run(t, "ip", "-o", "link", "show")
	if strings.Count(strings.TrimSpace(links), "\n") != 0 || !strings.Contains(links, "lo:") {
		t.Fatalf("want only lo in the container, have:\n%s", links)
	}

	src := filepath.Join(t.TempDir(), "hello.sh")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hello from $(cat /etc/debian_version)\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.CopyIn(src, "/usr/local/bin/hello"); err != nil {
		t.Fatal(err)
	}
	if out := c.Run(t, "hello"); !strings.HasPrefix(out, "hello from 12") {
		t.Fatalf("copied script output %q", out)
	}
	if _, err := c.Exec("false"); err == nil {
		t.Fatal("a failing command inside reported success")
	}

	// Close removes everything, and nothing written leaks into the cache.
	pid, root, tmp := c.PID, c.Root, c.tmp
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("container init %d still alive after Close", pid)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temp dir %s left behind: %v", tmp, err)
	}
	cache, _ := RootFS()
	if _, err := os.Stat(filepath.Join(cache, "usr/local/bin/hello")); !os.IsNotExist(err) {
		t.Errorf("file written in container %s leaked into the cached rootfs", root)
	}
}

func BenchmarkBoot(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c := Boot(b)
		b.ReportMetric(float64(c.BootTime.Milliseconds()), "boot-ms")
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
