package sqlite

import (
	"os"
	"syscall"
)

// datasync flushes f's data (and the metadata needed to read it back)
// without its times: into a preallocated segment that is no journal
// commit at all.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
