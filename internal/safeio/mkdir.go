package safeio

import (
	"os"
	"path/filepath"
)

// syncDir is SyncDir, or a test's recorder.
var syncDir = SyncDir

// MkdirAll is os.MkdirAll whose new directories survive a crash: each
// one's entry in its parent is fsynced, from the top down. A directory
// that holds the queue and is new at the first start would otherwise be
// gone after a power loss, with every message acknowledged in it.
func MkdirAll(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}
