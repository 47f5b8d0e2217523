package systemd

import (
	"bytes"
	"fmt"
	"strings"
)

// WSL runs the single [boot] command of /etc/wsl.conf through sh as root at
// every start of the distro. Where systemd is not PID 1 that is the only hook
// that survives a restart of WSL, so the agent is started from there. The file
// belongs to the user: it is edited as text, so that comments, order, spacing
// and line endings stay as they were, and uninstall restores it byte for byte.

// BootCommand is the sh command that starts the agent in the background. It
// ends in "&" so that it can be put in front of a command the user already
// has (WSL allows only one): "ours & theirs" starts both, whereas appending
// ("theirs; ours") would be a syntax error after a "theirs &" and would wait
// for a "theirs" that never returns.
func BootCommand(binary, logFile string) string {
	return "nohup " + binary + " run >>" + logFile + " 2>&1 &"
}

// Marker comments on the lines we add. The "created" one also says that the
// file did not exist before, so uninstall deletes it instead of leaving it empty.
const (
	bootMarker        = "# Added by `wslmtu install` to start the agent (systemd is not running); `wslmtu uninstall` removes it."
	bootMarkerCreated = "# Created by `wslmtu install` to start the agent (systemd is not running); `wslmtu uninstall` removes it."
)

type confLine struct {
	start   int    // offset of the line in the file
	content string // the line without its end of line
}

func splitConfLines(conf []byte) []confLine {
	var out []confLine
	s := string(conf)
	off := 0
	for off < len(s) {
		end := strings.IndexByte(s[off:], '\n')
		var raw string
		if end < 0 {
			raw = s[off:]
		} else {
			raw = s[off : off+end]
		}
		out = append(out, confLine{start: off, content: strings.TrimSuffix(raw, "\r")})
		if end < 0 {
			break
		}
		off += end + 1
	}
	return out
}

// eol returns the line ending the file already uses (files edited from
// Windows have CRLF).
func eol(conf []byte) string {
	if bytes.Contains(conf, []byte("\r\n")) {
		return "\r\n"
	}
	return "\n"
}

func sectionName(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "[") {
		return "", false
	}
	end := strings.IndexByte(t, ']')
	if end < 0 {
		return "", false
	}
	return strings.ToLower(strings.TrimSpace(t[1:end])), true
}

// keyValue finds "key = value" on a line. valStart is where the value begins
// (inside the quotes if it is quoted), value is the value without quotes.
func keyValue(line string) (key, value string, valStart int, quoted bool, err error) {
	t := strings.TrimSpace(line)
	if t == "" || t[0] == '#' || t[0] == ';' {
		return "", "", 0, false, nil
	}
	eq := strings.IndexByte(line, '=')
	if eq < 0 {
		return "", "", 0, false, nil
	}
	key = strings.ToLower(strings.TrimSpace(line[:eq]))
	vs := eq + 1
	for vs < len(line) && (line[vs] == ' ' || line[vs] == '\t') {
		vs++
	}
	if vs < len(line) && line[vs] == '"' {
		i := vs + 1
		for ; i < len(line); i++ {
			if line[i] == '\\' {
				i++
				continue
			}
			if line[i] == '"' {
				return key, line[vs+1 : i], vs + 1, true, nil
			}
		}
		return key, "", 0, false, fmt.Errorf("unterminated quote in %q", strings.TrimSpace(line))
	}
	return key, strings.TrimRight(line[vs:], " \t"), vs, false, nil
}

// bootScan is what the [boot] section of a wsl.conf holds.
type bootScan struct {
	header  *confLine // first [boot] header
	command *confLine // first command key in a [boot] section
	cmdVal  string
	cmdAt   int // offset in the file where the command's value starts
	systemd bool
}

func scanBoot(conf []byte) (bootScan, error) {
	var b bootScan
	inBoot := false
	lines := splitConfLines(conf)
	for i := range lines {
		l := &lines[i]
		if name, ok := sectionName(l.content); ok {
			inBoot = name == "boot"
			if inBoot && b.header == nil {
				b.header = l
			}
			continue
		}
		if !inBoot {
			continue
		}
		key, val, vs, _, err := keyValue(l.content)
		if err != nil {
			return b, fmt.Errorf("[boot] %s: %w", key, err)
		}
		switch key {
		case "command":
			if b.command == nil {
				b.command, b.cmdVal, b.cmdAt = l, val, l.start+vs
			}
		case "systemd":
			b.systemd = strings.EqualFold(strings.TrimSpace(val), "true")
		}
	}
	return b, nil
}

// SystemdEnabled reports whether wsl.conf asks WSL to boot systemd
// ([boot] systemd=true); it takes effect only after `wsl --shutdown`.
func SystemdEnabled(conf []byte) bool {
	b, err := scanBoot(conf)
	return err == nil && b.systemd
}

// HasBootCommand reports whether ours is part of the [boot] command.
func HasBootCommand(conf []byte, ours string) bool {
	b, err := scanBoot(conf)
	return err == nil && b.command != nil && strings.Contains(b.cmdVal, ours)
}

// AddBootCommand returns conf with ours in its [boot] command: a new [boot]
// section or command line if there is none, else ours put in front of the
// user's command. exists tells whether the file existed (a missing file is
// created, and marked so). It changes nothing if ours is there already.
func AddBootCommand(conf []byte, exists bool, ours string) ([]byte, bool, error) {
	if strings.ContainsAny(ours, "\"\\\n\r#") {
		return nil, false, fmt.Errorf("boot command %q contains a character wsl.conf cannot hold unquoted", ours)
	}
	b, err := scanBoot(conf)
	if err != nil {
		return nil, false, fmt.Errorf("wsl.conf: %w", err)
	}
	nl := eol(conf)
	s := string(conf)
	switch {
	case b.command != nil && strings.Contains(b.cmdVal, ours):
		return conf, false, nil
	case b.command != nil:
		ins := ours
		if strings.TrimSpace(b.cmdVal) != "" {
			ins += " "
		}
		return []byte(s[:b.cmdAt] + ins + s[b.cmdAt:]), true, nil
	case b.header != nil:
		at := b.header.start + len(b.header.content)
		return []byte(s[:at] + insertedLine(nl, ours) + s[at:]), true, nil
	case !exists:
		return []byte(createdFile(ours)), true, nil
	case len(conf) == 0:
		return []byte(strings.TrimPrefix(appendedSection(nl, ours), nl+nl)), true, nil
	default:
		at := len(s)
		if strings.HasSuffix(s, nl) {
			at -= len(nl)
		}
		return []byte(s[:at] + appendedSection(nl, ours) + s[at:]), true, nil
	}
}

func insertedLine(nl, ours string) string {
	return nl + bootMarker + nl + "command = " + ours
}

func appendedSection(nl, ours string) string {
	return nl + nl + bootMarker + nl + "[boot]" + nl + "command = " + ours
}

func createdFile(ours string) string {
	return bootMarkerCreated + "\n[boot]\ncommand = " + ours + "\n"
}

// RemoveBootCommand undoes AddBootCommand: it removes exactly the text that
// was added, leaving the user's own command and everything else as it was.
// remove tells the caller to delete the file (install created it).
func RemoveBootCommand(conf []byte, ours string) (out []byte, changed, remove bool, err error) {
	s := string(conf)
	if s == createdFile(ours) {
		return nil, true, true, nil
	}
	nl := eol(conf)
	for _, block := range []string{
		appendedSection(nl, ours),
		strings.TrimPrefix(appendedSection(nl, ours), nl+nl),
		insertedLine(nl, ours),
	} {
		if i := strings.Index(s, block); i >= 0 {
			return []byte(s[:i] + s[i+len(block):]), true, false, nil
		}
	}
	b, err := scanBoot(conf)
	if err != nil {
		return nil, false, false, fmt.Errorf("wsl.conf: %w", err)
	}
	if b.command == nil {
		return conf, false, false, nil
	}
	rest := s[b.cmdAt:]
	switch {
	case strings.HasPrefix(rest, ours+" "):
		return []byte(s[:b.cmdAt] + rest[len(ours)+1:]), true, false, nil
	case strings.HasPrefix(rest, ours):
		return []byte(s[:b.cmdAt] + rest[len(ours):]), true, false, nil
	case strings.Contains(b.cmdVal, ours):
		// Someone moved our part around: take it out where it is.
		i := strings.Index(rest, ours)
		return []byte(s[:b.cmdAt] + rest[:i] + strings.TrimPrefix(rest[i+len(ours):], " ")), true, false, nil
	}
	return conf, false, false, nil
}
