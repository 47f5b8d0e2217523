//go:build !linux

package statefile

import (
	"os"
	"path/filepath"
)

// ReplaceFile writes data to a temporary file beside path and renames it
// over path. Elsewhere than on Linux wslmtu writes no file as root, so the
// descriptor-relative care of the Linux version is not needed.
func ReplaceFile(path string, data []byte, perm os.FileMode, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReplaceFileIfChanged is ReplaceFile, skipped when path holds data already.
func ReplaceFileIfChanged(path string, data []byte, perm os.FileMode, sync bool) (bool, error) {
	if old, err := ReadFile(path); err == nil && string(old) == string(data) {
		return false, nil
	}
	return true, ReplaceFile(path, data, perm, sync)
}
