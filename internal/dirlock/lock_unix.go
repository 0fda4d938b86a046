//go:build !windows

package dirlock

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

var errWouldBlock = unix.EWOULDBLOCK

// releaseWait is 0: flock is let go of as the holder's last descriptor
// closes, also when it is killed, so a held lock is held.
const releaseWait = 0

// lock takes an exclusive flock without waiting. flock belongs to the
// open file, so a second Acquire in the same process is refused too.
func lock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

// unsupported reports an error that says the file system cannot lock.
func unsupported(err error) bool {
	return errors.Is(err, unix.ENOLCK) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)
}

// unlock does nothing: closing the file lets go of its flock at once.
func unlock(*os.File) error { return nil }
