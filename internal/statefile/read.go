package statefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileSize bounds every config and state file wslmtu reads. Real ones
// are a few kB; a symlink to /dev/zero, a FIFO or a huge file must give an
// error at once, not a hang or an out-of-memory agent.
const MaxFileSize = 256 << 10

// ReadFile reads a regular file of at most MaxFileSize bytes. It follows
// symlinks, but one that leads nowhere is an error, not a missing file: the
// user meant a file to be there. A missing file gives an error matching
// fs.ErrNotExist. It never blocks: a FIFO is refused before it is read.
func ReadFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if target, lerr := os.Readlink(path); lerr == nil {
			return nil, fmt.Errorf("%s is a symlink to %s, which does not exist", path, target)
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, describeMode(fi.Mode()))
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a wslmtu file can be", path, fi.Size(), MaxFileSize)
	}
	// The size can grow between Stat and the read: read one byte more than
	// allowed to notice.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s grew beyond the %d bytes a wslmtu file can be", path, MaxFileSize)
	}
	return data, nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.String()
}
