package windows

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeText turns a Windows tool's output into a Go string. wsl.exe writes
// its own messages in UTF-16LE (with a BOM on some builds, without on others)
// unless WSL_UTF8=1 is set, while a Linux program run through wsl.exe writes
// UTF-8; so the encoding is detected, not assumed. A UTF-8 BOM is dropped.
func DecodeText(b []byte) string {
	if bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}) {
		return string(b[3:])
	}
	if bytes.HasPrefix(b, []byte{0xFF, 0xFE}) {
		return decodeUTF16LE(b[2:])
	}
	if looksUTF16LE(b) {
		return decodeUTF16LE(b)
	}
	return string(b)
}

// looksUTF16LE: ASCII text in UTF-16LE has a zero in most odd positions; real
// UTF-8 text never contains NUL bytes.
func looksUTF16LE(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	zeros := 0
	pairs := len(b) / 2
	for i := 1; i < len(b); i += 2 {
		if b[i] == 0 {
			zeros++
		}
	}
	return zeros*2 >= pairs
}

// lines splits a tool's text at every line break it may print: CRLF, LF,
// and a lone CR, which would otherwise end up inside a parsed name and
// overwrite a terminal line when the name is printed.
func lines(text string) []string {
	return strings.Split(strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n"), "\n")
}

func decodeUTF16LE(b []byte) string {
	if len(b)%2 == 1 {
		b = b[:len(b)-1]
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// Distro is one row of `wsl.exe -l -v`.
type Distro struct {
	Name    string `json:"name"`
	State   string `json:"state"` // as printed, localized ("Running", "Stopped", "Wird ausgeführt")
	Version int    `json:"version"`
	Default bool   `json:"default"`
}

// ParseDistros parses `wsl.exe --list --verbose`:
//
//	  NAME            STATE           VERSION
//	* Ubuntu-24.04    Running         2
//	  docker-desktop  Stopped         2
//
// The header and the state are localized and a state may be several words
// ("Wird ausgeführt"), but a distro name cannot contain spaces and the
// version is the last column; so a row is: optional "*", the name, the
// state (everything in between), the version.
func ParseDistros(out []byte) ([]Distro, error) {
	var distros []Distro
	sawHeader := false
	for i, l := range lines(DecodeText(out)) {
		line := i + 1
		s := strings.TrimSpace(strings.TrimRight(l, "\x00"))
		if s == "" {
			continue
		}
		if !sawHeader {
			// The header is the first non-empty line; anything else first
			// means wsl.exe printed a message instead of a table.
			if len(strings.Fields(s)) == 3 && !strings.HasPrefix(s, "*") {
				sawHeader = true
				continue
			}
			return nil, fmt.Errorf("wsl.exe -l -v printed no distro table: %q", s)
		}
		d := Distro{}
		if strings.HasPrefix(s, "*") {
			d.Default = true
			s = strings.TrimSpace(s[1:])
		}
		f := strings.Fields(s)
		// Only the default distro's row starts with "*", and once: a second
		// one is no distro name.
		if len(f) < 3 || strings.HasPrefix(f[0], "*") {
			return nil, fmt.Errorf("wsl.exe -l -v line %d %q: want NAME STATE VERSION", line, s)
		}
		v, err := strconv.Atoi(f[len(f)-1])
		if err != nil || v < 1 {
			return nil, fmt.Errorf("wsl.exe -l -v line %d %q: version %q is not a WSL version", line, s, f[len(f)-1])
		}
		d.Name = f[0]
		d.State = strings.Join(f[1:len(f)-1], " ")
		d.Version = v
		distros = append(distros, d)
	}
	if !sawHeader {
		return nil, fmt.Errorf("wsl.exe -l -v printed nothing")
	}
	return distros, nil
}

// ParseRunning parses `wsl.exe --list --running --quiet`: one name per line.
// This list is not localized, unlike the STATE column of -l -v, so it is how
// "running" is decided. When none run, wsl.exe prints a sentence and exits
// non-zero; callers treat that error as an empty list. A line with a space, a
// control character, an invisible one (a second byte-order mark) or bytes
// that are not UTF-8 is such a sentence or undecodable, not a name.
func ParseRunning(out []byte) []string {
	var names []string
	for _, l := range lines(DecodeText(out)) {
		l = strings.TrimSpace(strings.TrimRight(l, "\x00"))
		if l == "" || strings.IndexFunc(l, notInName) >= 0 {
			continue
		}
		names = append(names, l)
	}
	return names
}

func notInName(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}
