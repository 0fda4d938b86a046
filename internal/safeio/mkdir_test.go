package safeio

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Every directory MkdirAll creates has its parent synced, top down;
// directories that were there are left alone.
func TestMkdirAllSyncsWhatItCreates(t *testing.T) {
	var synced []string
	syncDir = func(d string) error { synced = append(synced, d); return SyncDir(d) }
	t.Cleanup(func() { syncDir = SyncDir })

	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "c")
	if err := MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("%s after MkdirAll: %v", dir, err)
	}
	want := []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b")}
	if !slices.Equal(synced, want) {
		t.Errorf("synced %q, want %q", synced, want)
	}

	synced = nil
	if err := MkdirAll(filepath.Join(root, "a", "b", "d"), 0o750); err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(root, "a", "b")}; !slices.Equal(synced, want) {
		t.Errorf("second MkdirAll synced %q, want %q", synced, want)
	}
	synced = nil
	if err := MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 0 {
		t.Errorf("MkdirAll of an existing directory synced %q, want nothing", synced)
	}
}
