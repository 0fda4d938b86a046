//go:build windows

package safeio

import (
	"errors"
	"syscall"
)

// SyncDir is a no-op on Windows, where a directory cannot be opened for
// FlushFileBuffers without special flags. Renames are made durable by
// MOVEFILE_WRITE_THROUGH instead (Rename, Commit); a new file's entry
// is left to NTFS, which journals it and is relied on to write it with
// the file's own FlushFileBuffers.
func SyncDir(dir string) error { return nil }

func isUnsupported(err error) bool { return true }

// IsNoSpace reports whether err means the disk is full
// (ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL).
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.Errno(112)) || errors.Is(err, syscall.Errno(39))
}
