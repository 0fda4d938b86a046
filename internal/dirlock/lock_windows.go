//go:build windows

package dirlock

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

var errWouldBlock = windows.ERROR_LOCK_VIOLATION

// releaseWait covers a lock of a process that ended, which Windows frees
// when it gets to it; Release unlocks, so a clean stop does not need it.
const releaseWait = 2 * time.Second

// lockedByte is the one byte locked, far past the process id, which
// stays readable: Windows locks keep other processes from reading the
// bytes they cover.
const lockedByte = 0x7fffffff

// lock takes an exclusive lock on lockedByte without waiting.
func lock(f *os.File) error {
	return windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0,
		&windows.Overlapped{OffsetHigh: lockedByte})
}

// unlock lets go of the lock before the file is closed, as Microsoft
// recommends (LockFileEx): "the time it takes for the operating system
// to unlock these locks depends upon available system resources".
func unlock(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &windows.Overlapped{OffsetHigh: lockedByte})
}

// unsupported reports an error that says the file system cannot lock.
func unsupported(err error) bool {
	return errors.Is(err, windows.ERROR_NOT_SUPPORTED) || errors.Is(err, windows.ERROR_INVALID_FUNCTION)
}
