//go:build !windows

package safeio

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Nothing is retried outside Windows: no other system refuses to rename
// or remove a file because another process has it open.
func TestNoRetryOnUnix(t *testing.T) {
	old := sleep
	sleep = func(time.Duration) { t.Error("slept outside Windows") }
	t.Cleanup(func() { sleep = old })
	for _, err := range []error{syscall.EACCES, syscall.EPERM, syscall.EBUSY, syscall.ETXTBSY} {
		if busy(err) {
			t.Errorf("%v is taken for a busy file", err)
		}
	}
	dir := t.TempDir()
	if err := Rename(filepath.Join(dir, "missing"), filepath.Join(dir, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Rename of a missing file: %v", err)
	}
	if err := Remove(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove of a missing file: %v", err)
	}
}
