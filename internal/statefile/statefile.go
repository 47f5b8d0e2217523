package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteJSON replaces path atomically and safely (see ReplaceFile): a crash
// leaves the old or the new content, never half of one, because the revert
// record must survive a power cut on the Windows side.
func WriteJSON(path string, v any) error { return writeJSON(path, v, true) }

// WriteJSONUnsynced is WriteJSON without fsync, for counters that are
// rewritten often and may lose the last update in a crash.
func WriteJSONUnsynced(path string, v any) error { return writeJSON(path, v, false) }

func writeJSON(path string, v any, sync bool) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return ReplaceFile(path, append(data, '\n'), 0o644, sync)
}

// ReadJSON fills v from path; a missing file leaves v untouched and is not an
// error. The file must be a regular file of at most MaxFileSize bytes.
func ReadJSON(path string, v any) (found bool, err error) {
	data, err := ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("%s is damaged: %w", path, err)
	}
	return true, nil
}
