//go:build !windows

package safeio

import (
	"errors"
	"io/fs"
	"os"
	"sync"
)

// rename is os.Rename; Rename syncs the directories after it.
func rename(from, to string) error { return os.Rename(from, to) }

// newNames makes the look for a free name and the rename one step for
// the writers in this process. Rename, unlike link, works on every file
// system a drop directory may be on (SMB shares included), and so does
// a look first, unlike renameat2's RENAME_NOREPLACE (refused by some
// file systems); the price is that another process creating the same
// names could still be replaced.
var newNames sync.Mutex

// renameNoReplace renames from to to unless to exists (an error that
// is fs.ErrExist).
func renameNoReplace(from, to string) error {
	newNames.Lock()
	defer newNames.Unlock()
	_, err := os.Lstat(to)
	switch {
	case err == nil:
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrExist}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return os.Rename(from, to)
}

func isBusy(error) bool { return false }
