// Package dirlock owns the data directory's lock: one Sluice per
// node.data_dir. Two processes on one queue would both number segment
// files from the same place and write contents over each other's, and
// both append to the same tracking logs; SQLite's own locks protect only
// its database. The lock is the operating system's (flock, LockFileEx),
// so a process that dies, even by kill -9, lets go of it (on Windows
// within a moment, which Acquire waits for).
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/safeio"
)

// Name is the lock file's name in the data directory.
const Name = "sluice.lock"

// Lock is a held data directory lock.
type Lock struct {
	f *os.File
}

// ErrHeld reports that another process holds the lock.
var ErrHeld = errors.New("in use by another Sluice")

// ErrUnsupported reports a file system that cannot lock (some network
// file systems): Sluice runs without the lock rather than not at all,
// and says so.
var ErrUnsupported = errors.New("its file system does not support file locks")

// lockFile is lock, or a test's stand-in.
var lockFile = lock

// lockWait is how long Acquire waits for a lock that is held (a
// variable for tests, like sleep): on Windows, closing the handle of a
// process that ended frees its lock "depending upon available system
// resources" (LockFileEx, Microsoft Learn), so a restart right after a
// crash could be refused naming a process that is gone.
var (
	lockWait time.Duration = releaseWait
	sleep                  = time.Sleep
)

// Acquire takes the lock on dir, creating dir if needed, and writes this
// process's id into the lock file for whoever finds it taken.
func Acquire(dir string) (*Lock, error) {
	if err := safeio.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, Name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := lockWaiting(f); err != nil {
		f.Close()
		if unsupported(err) {
			return nil, fmt.Errorf("data directory %s: %w (%v): make sure no other Sluice uses it", dir, ErrUnsupported, err)
		}
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("data directory %s is %w%s, which holds %s: stop it, or give this one its own node.data_dir",
				dir, ErrHeld, holder(path), path)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	// The process id is for the message above, not the lock itself.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// lockWaiting takes the lock, trying again while it is held until
// lockWait has been slept.
func lockWaiting(f *os.File) error {
	var slept time.Duration
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err := lockFile(f)
		if !errors.Is(err, errWouldBlock) || slept >= lockWait {
			return err
		}
		delay = min(delay, lockWait-slept)
		sleep(delay)
		slept += delay
	}
}

// holder names the process that wrote the lock file, if it says.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
		return fmt.Sprintf(" (pid %d)", pid)
	}
	return ""
}

// Release lets go of the lock, unlocking before closing (on Windows
// a lock freed by the close alone may linger). The file stays: removing
// it would let a process that opened it just before lock a file no one
// else can find.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	uerr := unlock(l.f)
	if err := l.f.Close(); err != nil {
		return err
	}
	return uerr
}
