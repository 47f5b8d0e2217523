package statefile

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteJSONReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "record.json")
	var got map[string]int
	if found, err := ReadJSON(path, &got); found || err != nil {
		t.Fatalf("missing file: found %v, err %v", found, err)
	}
	for i := 0; i < 3; i++ {
		if err := WriteJSON(path, map[string]int{"eth0": 1280 + i}); err != nil {
			t.Fatal(err)
		}
	}
	if found, err := ReadJSON(path, &got); !found || err != nil || got["eth0"] != 1282 {
		t.Fatalf("read back %v (found %v, err %v)", got, found, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestReadJSONNamesADamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revert.json")
	os.WriteFile(path, []byte("{half"), 0o644)
	var v map[string]int
	if _, err := ReadJSON(path, &v); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want it to name %s", err, path)
	}
}

func TestLockSerializes(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(dir, LinksLock, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	order := []string{}
	done := make(chan struct{})
	// The second holder says it waits only after failing to take the lock:
	// the barrier that it tried while the first held it.
	waiting := make(chan struct{})
	go func() {
		second, err := Acquire(dir, LinksLock, 0, func(string) { close(waiting) })
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		order = append(order, "second")
		mu.Unlock()
		second.Release()
		close(done)
	}()
	<-waiting
	mu.Lock()
	order = append(order, "first releases")
	mu.Unlock()
	first.Release()
	<-done
	if order[0] != "first releases" {
		t.Errorf("the second holder got the lock while the first held it: %v", order)
	}
}
