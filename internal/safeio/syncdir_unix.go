//go:build !windows

package safeio

import (
	"errors"
	"os"
	"syscall"
)

// SyncDir fsyncs a directory so that entries created or renamed in it
// survive a crash (POSIX leaves this to the application).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

func isUnsupported(err error) bool { return errors.Is(err, syscall.ENOTSUP) }

// IsNoSpace reports whether err means the disk or quota is full.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
