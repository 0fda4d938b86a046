//go:build !linux

package sqlite

import "os"

// datasync flushes f; elsewhere than Linux, with Sync.
func datasync(f *os.File) error { return f.Sync() }
