package safeio

import (
	"os"
	"path/filepath"
	"time"
)

// Windows refuses to rename or remove a file that another process has
// open without FILE_SHARE_DELETE (ERROR_SHARING_VIOLATION), or that is
// being deleted (ERROR_ACCESS_DENIED); antivirus scanners, search
// indexers and backup agents open new files for a moment. Go's own
// tools wait that out (cmd/internal/robustio, golang.org/issue/31247,
// golang.org/issue/32188); so does safeio, for up to retryLimit. No
// other system refuses for that, and busy is always false there.

// retryLimit bounds the time slept waiting for a busy file: longer than
// a scan of a new file, short enough for a delivery worker to wait.
const retryLimit = 500 * time.Millisecond

// sleep is time.Sleep, busy isBusy (variables for tests).
var sleep, busy = time.Sleep, isBusy

// retry calls op until it succeeds, fails other than busy, or has been
// given retryLimit in sleeps; it returns op's last error.
func retry(op func() error) error {
	var slept time.Duration
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		err := op()
		if err == nil || !busy(err) || slept >= retryLimit {
			return err
		}
		delay = min(delay, retryLimit-slept)
		sleep(delay)
		slept += delay
	}
}

// Rename renames from to to, replacing a file there, and returns once
// the rename is on disk: elsewhere both directories are synced, on
// Windows MoveFileEx writes it through. A busy file is waited for.
func Rename(from, to string) error {
	if err := retry(func() error { return rename(from, to) }); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(to)); err != nil {
		return err
	}
	if d := filepath.Dir(from); d != filepath.Dir(to) {
		return syncDir(d)
	}
	return nil
}

// Remove is os.Remove, waiting for a busy file.
func Remove(path string) error {
	return retry(func() error { return os.Remove(path) })
}
