//go:build windows

// These tests run only on Windows (the Windows CI); on Linux they are
// compiled by GOOS=windows go test -c.

package dirlock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// Release unlocks before closing: the lock is free at once, to another
// handle as to a new Acquire, without waiting for Windows to free the
// lock of a closed handle.
func TestReleaseFreesAtOnce(t *testing.T) {
	dir := t.TempDir()
	defer func(w time.Duration, f func(time.Duration)) { lockWait, sleep = w, f }(lockWait, sleep)
	lockWait = 0
	sleep = func(time.Duration) { t.Error("Acquire slept") }
	for i := range 3 {
		l, err := Acquire(dir)
		if err != nil {
			t.Fatalf("Acquire %d right after a Release: %v", i, err)
		}
		if err := l.Release(); err != nil {
			t.Fatalf("Release %d: %v", i, err)
		}
	}

	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, Name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := lock(f); !errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		t.Errorf("lock of a held lock file: %v, want ERROR_LOCK_VIOLATION", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := lock(f); err != nil {
		t.Errorf("lock right after Release: %v", err)
	}
	// The process id stays readable under the lock.
	if got := holder(filepath.Join(dir, Name)); got == "" {
		t.Error("the lock file's process id cannot be read while it is locked")
	}
}
