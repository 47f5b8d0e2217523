// Package logbuf is a log that a test reads while goroutines and child
// processes still write to it: a bytes.Buffer shared that way is a data
// race.
//
// It is for tests only. It imports no package of this module.
package logbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
)

// Buffer is safe for concurrent use. The zero value is an empty log.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Printf writes one line: the format with a newline if it has none.
func (s *Buffer) Printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	_, _ = s.Write([]byte(line))
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Len is a mark for Since: the bytes written so far.
func (s *Buffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// Since is what was written after mark, a Len taken earlier.
func (s *Buffer) Since(mark int) string { return s.String()[mark:] }

// Tail is the last n lines.
func (s *Buffer) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(s.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
