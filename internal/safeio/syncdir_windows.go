//go:build windows

package safeio

import (
	"errors"
	"syscall"
)

// SyncDir is a no-op on Windows: NTFS journals directory entries itself
// and a directory cannot be opened for FlushFileBuffers without special
// flags; MoveFileEx, which os.Rename uses, is durable once it returns with
// the file's own data flushed.
func SyncDir(dir string) error { return nil }

func isUnsupported(err error) bool { return true }

// IsNoSpace reports whether err means the disk is full
// (ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL).
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.Errno(112)) || errors.Is(err, syscall.Errno(39))
}
