package tailnet

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wslmtu/wslmtu/internal/testenv/logbuf"
)

// noAgentEnv set to 1 runs the scenarios without wslmtu's agent: each must
// then fail, which shows that it is the agent that makes it pass.
const noAgentEnv = "WSLMTU_TAILNET_NO_AGENT"

func noAgent() bool { return os.Getenv(noAgentEnv) == "1" }

// agent is the real wslmtu binary running `wslmtu run` in WSL's namespace,
// as systemd would start it: with NOTIFY_SOCKET, told READY=1 when its
// first reconcile is done.
type agent struct {
	cmd    *exec.Cmd
	dir    string
	log    *logbuf.Buffer
	ready  chan struct{}
	exited chan struct{}
}

// startAgent starts the agent with the defaults plus assume_wsl (the lab is
// no WSL) and extra config lines, and returns once it is ready; with
// WSLMTU_TAILNET_NO_AGENT=1 it starts nothing and returns nil.
func (w *world) startAgent(t *testing.T, extra string) *agent {
	t.Helper()
	if noAgent() {
		t.Logf("%s=1: wslmtu's agent is not started", noAgentEnv)
		return nil
	}
	a := &agent{dir: t.TempDir(), log: &logbuf.Buffer{}, ready: make(chan struct{}), exited: make(chan struct{})}
	cfg := filepath.Join(a.dir, "wslmtu.toml")
	if err := os.WriteFile(cfg, []byte("assume_wsl = true\n"+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(a.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		var once sync.Once
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
				once.Do(func() { close(a.ready) })
			}
		}
	}()
	a.cmd = exec.Command("ip", "netns", "exec", w.lab.WSLNetNS(), w.bins.wslmtu, "run",
		"--config", cfg, "--state-dir", filepath.Join(a.dir, "state"))
	a.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := w.lab.StartProcess(a.cmd); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	go func() {
		_ = a.cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		<-a.exited
		conn.Close()
		if t.Failed() || testing.Verbose() {
			t.Logf("wslmtu agent log:\n%s", a.log.String())
		}
	})
	select {
	case <-a.ready:
	case <-a.exited:
		t.Fatalf("wslmtu run exited before READY=1 (%v):\n%s", a.cmd.ProcessState, a.log.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("no READY=1 from wslmtu run within 10s:\n%s", a.log.String())
	}
	w.agent = a
	return a
}

// stop ends the agent as systemctl stop does and wants a clean exit.
func (a *agent) stop(t *testing.T) {
	t.Helper()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("wslmtu run still running 10s after SIGTERM:\n%s", a.log.String())
	}
	if !a.cmd.ProcessState.Success() {
		t.Fatalf("wslmtu run stopped with %v:\n%s", a.cmd.ProcessState, a.log.String())
	}
}

var latencyRE = regexp.MustCompile(`\blatency=(\S+)`)

// repairs are the agent's "repaired" log lines after byte mark, without
// the time stamp, and the latencies they name, once per repair (each line
// of one repair names the repair's latency).
func (a *agent) repairs(mark int) (lines []string, latencies []time.Duration) {
	for _, line := range strings.Split(a.log.Since(mark), "\n") {
		i := strings.Index(line, "msg=repaired")
		if i < 0 {
			continue
		}
		lines = append(lines, line[i:])
		if m := latencyRE.FindStringSubmatch(line); m != nil {
			if d, err := time.ParseDuration(m[1]); err == nil && !slices.Contains(latencies, d) {
				latencies = append(latencies, d)
			}
		}
	}
	return lines, latencies
}
