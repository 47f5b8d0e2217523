package statefile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ReplaceFile replaces path with a new file holding data, with mode perm:
// readers see the old content or the new, never half of one. With sync,
// the data and the rename are on disk when it returns (the revert record
// must survive a power cut on the Windows side).
//
// wslmtu writes as root, often into directories others can write to (a
// metrics_file under /tmp, a node_exporter directory). So the new file is
// created beside path under a random name with O_EXCL|O_NOFOLLOW, relative
// to a descriptor of the directory, and everything after that (the write,
// the mode, the sync, the rename) goes through descriptors: no name is
// looked up twice, so nobody can swap one for a link in between (that is
// how client_golang's WriteToTextfile, which chmods its temporary file by
// name, let a local user make root chmod any file).
//
// A directory writable by its group or others without the sticky bit is
// refused (*UnsafeDirError): anybody could replace the file in it after
// wslmtu wrote it. The directory's owner is trusted, as its writers are. A
// symlink at path is replaced by the file, never followed (rename(2)
// replaces the link itself); anything else but a regular file there (a
// directory, a FIFO) is an error naming it.
func ReplaceFile(path string, data []byte, perm os.FileMode, sync bool) error {
	_, err := replace(path, data, perm, sync, false)
	return err
}

// ReplaceFileIfChanged is ReplaceFile, except that a regular file at path
// that holds data already, with mode perm, owned by this process's user, is
// left alone (same inode, same mtime); it reports whether it wrote.
func ReplaceFileIfChanged(path string, data []byte, perm os.FileMode, sync bool) (bool, error) {
	return replace(path, data, perm, sync, true)
}

// UnsafeDirError is a directory in which another user could replace a file
// that wslmtu writes as root.
type UnsafeDirError struct {
	File, Dir string
	Mode      fs.FileMode
}

func (e *UnsafeDirError) Error() string {
	who := "others"
	switch {
	case e.Mode&0o020 != 0 && e.Mode&0o002 != 0:
		who = "its group and others"
	case e.Mode&0o020 != 0:
		who = "its group"
	}
	return fmt.Sprintf("refusing to write %s: its directory %s (mode %04o) is writable by %s without the sticky bit, "+
		"so another user could swap the file for one of theirs; make the directory writable by its owner only "+
		"(sudo chmod go-w %s), set the sticky bit (sudo chmod +t %s), or choose another directory",
		e.File, e.Dir, uint32(e.Mode.Perm()), who, e.Dir, e.Dir)
}

// openDir opens dir for the *at calls and refuses one that others may
// rearrange (see ReplaceFile). file is the path the caller means to write,
// for the error.
func openDir(dir, file string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		unix.Close(fd)
		return -1, &UnsafeDirError{File: file, Dir: dir, Mode: fs.FileMode(st.Mode & 0o777)}
	}
	return fd, nil
}

func replace(path string, data []byte, perm os.FileMode, sync, skipUnchanged bool) (bool, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	dir = filepath.Clean(dir)
	if base == "" || base == "." || base == ".." {
		return false, fmt.Errorf("%s: not a file name", path)
	}
	dirfd, err := openDir(dir, path)
	if err != nil {
		return false, err
	}
	defer unix.Close(dirfd)

	same, err := holds(dirfd, base, path, data, perm)
	if err != nil {
		return false, err
	}
	if same && skipUnchanged {
		return false, nil
	}

	tmp, fd, err := createTemp(dirfd, base)
	if err != nil {
		return false, &os.PathError{Op: "create", Path: filepath.Join(dir, "."+base+".tmp-*"), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, tmp))
	err = writeAll(f, data, perm, sync)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dirfd, tmp, dirfd, base)
		if err != nil {
			err = &os.LinkError{Op: "rename", Old: filepath.Join(dir, tmp), New: path, Err: err}
		}
	}
	if err != nil {
		// Only wslmtu (or root) can remove a root-owned name from a sticky
		// directory, so this removes our own file.
		_ = unix.Unlinkat(dirfd, tmp, 0)
		return false, err
	}
	if sync {
		// The rename is only durable once the directory is.
		if err := unix.Fsync(dirfd); err != nil {
			return true, &os.PathError{Op: "fsync", Path: dir, Err: err}
		}
	}
	return true, nil
}

// createTemp makes a new file beside base that nobody else can have
// prepared: O_EXCL fails on any existing name, a symlink included.
func createTemp(dirfd int, base string) (string, int, error) {
	var err error
	for range 16 {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		name := "." + base + ".tmp-" + hex.EncodeToString(rnd[:])
		var fd int
		fd, err = unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			return name, fd, nil
		}
		if err != unix.EEXIST && err != unix.EINTR {
			return "", -1, err
		}
	}
	return "", -1, err
}

func writeAll(f *os.File, data []byte, perm os.FileMode, sync bool) error {
	if _, err := f.Write(data); err != nil {
		return err
	}
	// On the descriptor: created 0600, whatever the umask, then given its
	// final mode.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if sync {
		return f.Sync()
	}
	return nil
}

// holds says whether base in dirfd is a regular file with exactly data and
// mode perm, owned by us. It refuses what must not be replaced (a
// directory, a FIFO, a device) and never follows a symlink there.
func holds(dirfd int, base, path string, data []byte, perm os.FileMode) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case err != nil:
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return false, nil // replaced, not followed
	default:
		return false, fmt.Errorf("%s is not a regular file (%s); wslmtu will not replace it", path, describeMode(unixMode(st.Mode)))
	}
	if st.Uid != uint32(os.Geteuid()) || fs.FileMode(st.Mode&0o777) != perm.Perm() || st.Size != int64(len(data)) {
		return false, nil
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, nil // gone or swapped since: write
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	old, err := io.ReadAll(io.LimitReader(f, int64(len(data))+1))
	if err != nil {
		return false, nil
	}
	return bytes.Equal(old, data), nil
}

func unixMode(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFSOCK:
		return fs.ModeSocket
	}
	return fs.ModeIrregular
}
