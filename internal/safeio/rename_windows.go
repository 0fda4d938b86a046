//go:build windows

package safeio

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// os.Rename calls MoveFileEx with MOVEFILE_REPLACE_EXISTING only, which
// may return before the new name is on disk, and SyncDir cannot sync a
// directory here. MOVEFILE_WRITE_THROUGH: "the function does not return
// until the file is actually moved on the disk" (MoveFileExW, Microsoft
// Learn).

// rename renames from to to, replacing a file there, written through.
func rename(from, to string) error {
	return moveFile(from, to, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
}

// renameNoReplace renames from to to unless to exists, in one step:
// without MOVEFILE_REPLACE_EXISTING, MoveFileEx fails with
// ERROR_ALREADY_EXISTS or ERROR_FILE_EXISTS (both fs.ErrExist), so no
// other process's file is ever replaced.
func renameNoReplace(from, to string) error {
	return moveFile(from, to, windows.MOVEFILE_WRITE_THROUGH)
}

func moveFile(from, to string, flags uint32) error {
	f, err := windows.UTF16PtrFromString(longPath(from))
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	t, err := windows.UTF16PtrFromString(longPath(to))
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	if err := windows.MoveFileEx(f, t, flags); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// longPath gives a path of 248 characters or more the \\?\ prefix, as
// os does for the calls it makes: without it Windows refuses paths
// longer than MAX_PATH unless the process opted in to long paths.
func longPath(path string) string {
	if strings.HasPrefix(path, `\\?\`) || strings.HasPrefix(path, `\??\`) || strings.HasPrefix(path, `\\.\`) {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil || len(abs) < 248 {
		return path
	}
	if strings.HasPrefix(abs, `\\`) {
		return `\\?\UNC\` + abs[2:]
	}
	return `\\?\` + abs
}

// isBusy reports an error that another process having the file open, or
// deleting it, may cause.
func isBusy(err error) bool {
	return errors.Is(err, windows.ERROR_SHARING_VIOLATION) || errors.Is(err, windows.ERROR_ACCESS_DENIED)
}
