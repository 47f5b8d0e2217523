package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wslmtu/wslmtu/internal/config"
)

// These tests run the command tree in-process: nothing here needs a
// network namespace or root.

var testEnv = env{
	version:    "1.2.3-test",
	interfaces: func() ([]string, error) { return []string{"lo", "eth0", "tailscale0", "wg0"}, nil },
}

// run executes one command line in a fresh tree.
func run(t *testing.T, args ...string) cliResult {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(newRootCmd(testEnv), args, &out, &errOut)
	return cliResult{out: out.String() + errOut.String(), code: code}
}

// stdout executes one command line and returns only its standard output.
func stdout(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := execute(newRootCmd(testEnv), args, &out, &errOut); code != 0 {
		t.Fatalf("wslmtu %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

func TestVersionIsStamped(t *testing.T) {
	if got := stdout(t, "version"); got != "wslmtu 1.2.3-test\n" {
		t.Errorf("version printed %q", got)
	}
}

// Every config key has its flag, named after the key, with the key's usage
// in --help; the [[tunnel]] tables have none.
func TestEveryConfigKeyHasItsFlag(t *testing.T) {
	root := newRootCmd(testEnv)
	help := stdout(t, "--help")
	for _, k := range config.Keys {
		if k.Type == config.TypeTables {
			if k.Flag() != "" || root.PersistentFlags().Lookup(strings.ReplaceAll(k.Name, "_", "-")) != nil {
				t.Errorf("%s: a [[%s]] table has a flag", k.Name, k.Name)
			}
			continue
		}
		f := root.PersistentFlags().Lookup(k.Flag())
		if f == nil {
			t.Errorf("%s: no --%s", k.Name, k.Flag())
			continue
		}
		if f.Usage != k.Usage {
			t.Errorf("--%s usage %q, want the key's %q", k.Flag(), f.Usage, k.Usage)
		}
		if !regexp.MustCompile(`--` + regexp.QuoteMeta(k.Flag()) + `\b.*` + regexp.QuoteMeta(k.Usage)).MatchString(help) {
			t.Errorf("--help does not show --%s with %q", k.Flag(), k.Usage)
		}
	}
}

// Each flag lands in its key: `config` prints the configuration in effect,
// which must parse back to the defaults with exactly those keys changed.
func TestFlagsSetEveryKey(t *testing.T) {
	values := map[string]string{
		"mtu_strategy": "lower-tunnel", "outer_scope": "all", "max_outer_mtu": "1400", "tunnels": "wg0,zt*",
		"outer_interface": "eth1", "assume_wsl": "true", "mss_clamp": "true", "mss": "1200",
		"revert_on_stop": "true", "state_dir": "/tmp/wslmtu-state", "log_format": "json",
		"metrics_file": "/tmp/wslmtu.prom", "verify": "100.64.0.2,vpn.example.com", "verify_interval": "5m",
	}
	args := []string{"config", "--config", filepath.Join(t.TempDir(), "none.toml")}
	want := config.Default()
	for _, k := range config.Keys {
		if k.Type == config.TypeTables {
			continue
		}
		v, ok := values[k.Name]
		if !ok {
			t.Fatalf("the test gives no value for %s", k.Name)
		}
		args = append(args, "--"+k.Flag()+"="+v)
		flag := pflag.NewFlagSet("", pflag.ContinueOnError)
		flag.String("s", "", "")
		flag.Int("i", 0, "")
		flag.Bool("b", false, "")
		flag.StringSlice("l", nil, "")
		var typed any
		switch k.Type {
		case config.TypeString:
			typed = v
		case config.TypeInt:
			flag.Set("i", v)
			typed, _ = flag.GetInt("i")
		case config.TypeBool:
			typed = v == "true"
		case config.TypeList:
			typed = strings.Split(v, ",")
		}
		if err := want.Set(k.Name, typed); err != nil {
			t.Fatal(err)
		}
	}
	out := stdout(t, args...)
	got, err := config.Parse("config output", []byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flags gave\n%+v\nwant\n%+v", got, want)
	}
}

func TestConfigShowsTheFileWithItsTunnelTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wslmtu.toml")
	file := "mtu_strategy = \"raise-outer\"\n\n[[tunnel]]\nname = \"corp0\"\nkind = \"other\"\noverhead = 100\nfwmark = \"0x1000\"\n"
	os.WriteFile(path, []byte(file), 0o644)
	want, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out := stdout(t, "config", "--config", path)
	got, err := config.Parse("config output", []byte(out))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("config printed (%v)\n%s\nwhich reads as %+v, want %+v", err, out, got, want)
	}
}

// `wslmtu config --default` is the file the packages and install.sh
// install: it parses back to config.Default(), and keys given as flags are
// set in it.
func TestConfigDefaultParsesBackToDefaults(t *testing.T) {
	out := stdout(t, "config", "--default")
	if out != config.DefaultFile(config.Default()) {
		t.Errorf("config --default is not config.DefaultFile:\n%s", out)
	}
	got, err := config.Parse("default", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, config.Default()) {
		t.Errorf("config --default reads as %+v, want %+v", got, config.Default())
	}
	for _, k := range config.Keys {
		if k.Type != config.TypeTables && !strings.Contains(out, "# "+k.Name+" = ") {
			t.Errorf("config --default does not show %s", k.Name)
		}
	}

	out = stdout(t, "config", "--default", "--assume-wsl", "--max-outer-mtu", "1400")
	if !regexp.MustCompile(`(?m)^assume_wsl = true$`).MatchString(out) || !regexp.MustCompile(`(?m)^max_outer_mtu = 1400$`).MatchString(out) {
		t.Errorf("flags not written uncommented:\n%s", out)
	}
	want := config.Default()
	want.AssumeWSL, want.MaxOuterMTU = true, 1400
	if got, err := config.Parse("default", []byte(out)); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("config --default --assume-wsl --max-outer-mtu 1400 reads as %+v (%v)", got, err)
	}
}

func TestBadInputExitsTwo(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("# mine\nmtu_strategy = \"sideways\"\n"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"config", "--default", "--mtu-strategy", "bogus"}, `--mtu-strategy: unknown mtu strategy "bogus" (allowed: auto, raise-outer, lower-tunnel, off)`},
		{[]string{"config", "--outer-scope", "some"}, `--outer-scope: unknown outer scope "some"`},
		{[]string{"config", "--max-outer-mtu", "70000"}, "--max-outer-mtu: 70000 is out of range"},
		{[]string{"config", "--max-outer-mtu", "big"}, `invalid argument "big" for "--max-outer-mtu"`},
		{[]string{"config", "--metrics-file", "relative.prom"}, `--metrics-file: "relative.prom" must be an absolute file path`},
		{[]string{"config", "--config", bad}, bad + `:2: mtu_strategy: unknown mtu strategy "sideways"`},
		{[]string{"config", "--frobnicate"}, "unknown flag: --frobnicate"},
		{[]string{"version", "extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		r := run(t, tt.args...)
		if r.code != exitUsage || !strings.Contains(r.out, tt.want) {
			t.Errorf("wslmtu %s: exit %d\n%s\nwant exit %d and %q", strings.Join(tt.args, " "), r.code, r.out, exitUsage, tt.want)
		}
	}
}

// complete asks the tree for completions the way the shell scripts do.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	out := stdout(t, append([]string{cobra.ShellCompNoDescRequestCmd}, args...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("no directive in %q", out)
	}
	return lines[:len(lines)-1]
}

func TestDynamicCompletion(t *testing.T) {
	strategies := make([]string, len(config.Strategies))
	for i, s := range config.Strategies {
		strategies[i] = string(s)
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"fix", "--mtu-strategy", ""}, strategies},
		{[]string{"--mtu-strategy=", ""}, nil}, // a value given already: nothing more
		{[]string{"status", "--outer-scope", ""}, []string{"tunnel", "all"}},
		{[]string{"run", "--log-format", ""}, []string{"text", "json"}},
		// Interface names, never lo.
		{[]string{"fix", "--outer-interface", ""}, []string{"eth0", "tailscale0", "wg0"}},
		{[]string{"fix", "--tunnels", "tailscale0,"}, []string{"tailscale0,eth0", "tailscale0,tailscale0", "tailscale0,wg0"}},
		{[]string{"st"}, []string{"status"}},
	}
	for _, tt := range tests {
		got := complete(t, tt.args...)
		if tt.want == nil {
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("completing %q: %q, want %q", tt.args, got, tt.want)
		}
	}
}

// completionScript writes `wslmtu completion SHELL` to a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wslmtu."+shell)
	if err := os.WriteFile(path, []byte(stdout(t, "completion", shell)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// asWslmtu puts this test binary on PATH as `wslmtu` (TestMain runs main()
// when WSLMTU_TEST_AS_CLI=1), for completion scripts that call it.
func asWslmtu(t *testing.T) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "wslmtu")); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "WSLMTU_TEST_AS_CLI=1")
}

func shell(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed", name)
	}
	return path
}

// bashCompletion is bash-completion's library, which cobra's bash script
// needs at completion time (not to load).
const bashCompletion = "/usr/share/bash-completion/bash_completion"

// The bash script loads and registers wslmtu; with bash-completion
// installed, completing `wslmtu fix --mtu-strategy ` through it (the script
// calls `wslmtu __complete`) gives the strategies.
func TestBashCompletionLoadsAndCompletes(t *testing.T) {
	bash := shell(t, "bash")
	script := completionScript(t, "bash")
	load := exec.Command(bash, "--norc", "--noprofile", "-c", `source "$1" && complete -p wslmtu`, "bash", script)
	out, err := load.CombinedOutput()
	if err != nil || !regexp.MustCompile(`^complete .* wslmtu\n$`).Match(out) {
		t.Fatalf("bash: source; complete -p wslmtu: %v\n%s", err, out)
	}
	if _, err := os.Stat(bashCompletion); err != nil {
		t.Skipf("the script loads; completing needs bash-completion (%s): %v", bashCompletion, err)
	}
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", `source "$1" && source "$2" && `+
		`COMP_WORDS=(wslmtu fix --mtu-strategy "") && COMP_CWORD=3 && COMP_LINE="wslmtu fix --mtu-strategy " && `+
		`COMP_POINT=${#COMP_LINE} && __start_wslmtu && printf '%s\n' "${COMPREPLY[@]}"`, "bash", bashCompletion, script)
	cmd.Env = asWslmtu(t)
	// stderr: compopt complains outside a real completion; only
	// COMPREPLY matters.
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("bash: %v\n%s%s", err, out, stderr.String())
	}
	var want []string
	for _, s := range config.Strategies {
		want = append(want, string(s))
	}
	if got := strings.Split(strings.TrimSpace(string(out)), "\n"); !slices.Equal(got, want) {
		t.Errorf("bash completed %q, want %q", got, want)
	}
}

// The zsh script loads and registers _wslmtu for wslmtu. compdef is
// compinit's; a stand-in records the call (compinit itself takes seconds).
func TestZshCompletionLoads(t *testing.T) {
	zsh := shell(t, "zsh")
	script := completionScript(t, "zsh")
	cmd := exec.Command(zsh, "-f", "-c", `compdef() { print -r -- "compdef $*" }; source "$1" && (( $+functions[_wslmtu] )) && print ok`, "zsh", script)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "compdef _wslmtu wslmtu\nok\n" {
		t.Errorf("zsh: %v\n%s", err, out)
	}
}

func TestFishCompletionLoadsAndCompletes(t *testing.T) {
	fish := shell(t, "fish")
	script := completionScript(t, "fish")
	cmd := exec.Command(fish, "--no-config", "-c", `source $argv[1]; and complete --do-complete="wslmtu fix --mtu-strategy "`, script)
	cmd.Env = append(asWslmtu(t), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fish: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	for _, s := range config.Strategies {
		if !slices.Contains(got, string(s)) {
			t.Errorf("fish did not offer %s: %q", s, out)
		}
	}
}

// availableCommands is the tree as the man pages show it: every command
// that is not hidden, with its parents.
func availableCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
			out = append(out, availableCommands(sub)...)
		}
	}
	return out
}

// The man pages render without a warning from man, there is one for each
// command, and each lists every flag of its command, its own and inherited,
// and its subcommands.
func TestManPages(t *testing.T) {
	man := shell(t, "man")
	dir := t.TempDir()
	stdout(t, "man", dir)

	root := newRootCmd(testEnv)
	root.InitDefaultCompletionCmd()
	commands := availableCommands(root)
	var pages []string
	for _, c := range commands {
		pages = append(pages, filepath.Join(dir, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"))
	}
	if written, _ := filepath.Glob(filepath.Join(dir, "*.1")); len(written) != len(commands) {
		t.Errorf("%d pages for %d commands: %v", len(written), len(commands), written)
	}
	// One man for all pages: each start costs a noticeable fraction of a second.
	check := exec.Command("sh", append([]string{"-c", `MANWIDTH=80 "$0" --warnings -l "$@" 2>&1 >/dev/null`, man}, pages...)...)
	if out, err := check.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("man --warnings: %v\n%s", err, out)
	}
	// Wide enough that no flag name is broken across lines.
	render := exec.Command(man, append([]string{"-l"}, pages...)...)
	render.Env = append(os.Environ(), "MANWIDTH=400", "LANG=C.UTF-8")
	all, err := render.Output()
	if err != nil {
		t.Fatalf("man -l: %v", err)
	}
	// Each page starts with its title, e.g. WSLMTU-FIX(1).
	starts := regexp.MustCompile(`(?m)^WSLMTU(-[A-Z]+)*\(1\)`).FindAllIndex(all, -1)
	if len(starts) < len(pages) {
		t.Fatalf("%d page headers in the output of %d pages", len(starts), len(pages))
	}
	texts := map[string][]byte{}
	for i, at := range starts {
		end := len(all)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		title := string(all[at[0]:at[1]])
		if _, seen := texts[title]; !seen { // the header, not the footer
			texts[title] = all[at[0]:end]
		}
	}
	for _, c := range commands {
		name := strings.ReplaceAll(c.CommandPath(), " ", "-")
		text := texts[strings.ToUpper(name)+"(1)"]
		if text == nil {
			t.Errorf("no page rendered for %s", name)
			continue
		}
		var missing []string
		have := func(s string) {
			if !bytes.Contains(text, []byte(s)) {
				missing = append(missing, s)
			}
		}
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.InheritedFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if !f.Hidden {
					have("--" + f.Name)
				}
			})
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				have(name + "-" + sub.Name() + "(1)")
			}
		}
		have(c.Short)
		if len(missing) > 0 {
			t.Errorf("the page of %s lacks %q:\n%s", name, missing, text)
		}
	}
	// The hidden plumbing stays out of the pages.
	for _, hidden := range []string{"wslmtu-man.1", "wslmtu-help.1"} {
		if _, err := os.Stat(filepath.Join(dir, hidden)); err == nil {
			t.Errorf("%s was written", hidden)
		}
	}
}
