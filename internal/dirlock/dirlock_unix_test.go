//go:build !windows

package dirlock

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A file system that cannot lock (flock fails with ENOLCK on some
// network file systems) gives ErrUnsupported, which the daemon logs and
// runs on; any other failure is not mistaken for it.
func TestAcquireUnsupported(t *testing.T) {
	defer func(f func(*os.File) error) { lockFile = f }(lockFile)
	dir := t.TempDir()

	lockFile = func(*os.File) error { return unix.ENOLCK }
	l, err := Acquire(dir)
	if !errors.Is(err, ErrUnsupported) || l != nil {
		t.Fatalf("Acquire on a file system without locks: %v, %v; want ErrUnsupported and no lock", l, err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("%q does not name the directory", err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("Release of no lock: %v", err)
	}

	lockFile = func(*os.File) error { return unix.EBADF }
	if _, err := Acquire(dir); err == nil || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrHeld) {
		t.Errorf("Acquire failing with EBADF: %v, want a plain error", err)
	}
}

// A held flock is reported at once: flock is let go of with the
// holder's last descriptor, so waiting would change nothing.
func TestAcquireDoesNotWait(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	defer func(f func(time.Duration)) { sleep = f }(sleep)
	sleep = func(time.Duration) { t.Error("Acquire slept waiting for a flock") }
	if _, err := Acquire(dir); !errors.Is(err, ErrHeld) {
		t.Errorf("second Acquire: %v, want ErrHeld", err)
	}
}
