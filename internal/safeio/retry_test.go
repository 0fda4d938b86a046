package safeio

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

var errBusy = errors.New("held open by another process")

// fakeBusy makes retry take the errors matching target as a busy file
// (as Windows sharing violations are) and records the sleeps, calling
// each with the number of sleeps so far; neither is restored by the
// caller.
func fakeBusy(t *testing.T, target error, each func(n int)) *[]time.Duration {
	t.Helper()
	var slept []time.Duration
	oldBusy, oldSleep := busy, sleep
	busy = func(err error) bool { return errors.Is(err, target) }
	sleep = func(d time.Duration) {
		slept = append(slept, d)
		if each != nil {
			each(len(slept))
		}
	}
	t.Cleanup(func() { busy, sleep = oldBusy, oldSleep })
	return &slept
}

func total(ds []time.Duration) (t time.Duration) {
	for _, d := range ds {
		t += d
	}
	return t
}

// A busy file is tried again until it is free.
func TestRetryWaitsOutBusyFile(t *testing.T) {
	slept := fakeBusy(t, errBusy, nil)
	calls := 0
	err := retry(func() error {
		if calls++; calls <= 3 {
			return errBusy
		}
		return nil
	})
	if err != nil || calls != 4 || len(*slept) != 3 {
		t.Errorf("retry of an op busy 3 times: %v after %d calls and sleeps %v; want success at the 4th call after 3 sleeps", err, calls, *slept)
	}
}

// A file that stays busy is given up on once retryLimit has been slept,
// with the busy error; any other error is returned at once.
func TestRetryGivesUp(t *testing.T) {
	slept := fakeBusy(t, errBusy, nil)
	calls := 0
	err := retry(func() error { calls++; return errBusy })
	if !errors.Is(err, errBusy) {
		t.Errorf("retry of an op always busy: %v, want the busy error", err)
	}
	if got := total(*slept); got != retryLimit || calls != len(*slept)+1 {
		t.Errorf("retry of an op always busy: %d calls, slept %v in all (%v); want %v slept and one call more than sleeps", calls, got, *slept, retryLimit)
	}

	*slept = nil
	other := errors.New("permission denied")
	if err := retry(func() error { return other }); err != other || len(*slept) != 0 {
		t.Errorf("retry of an op failing otherwise: %v after sleeps %v, want the error at once", err, *slept)
	}
}

// Commit, Rename and Remove wait out a busy file. Here the stand-in for
// busy is a directory in the way of the rename, removed after two
// sleeps; and a file not there yet, made after two sleeps.
func TestRenameAndRemoveWaitOutBusyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.eml")
	if err := os.Mkdir(path, 0o750); err != nil {
		t.Fatal(err)
	}
	slept := fakeBusy(t, syscall.EEXIST, func(n int) {
		if n == 2 {
			os.Remove(path)
		}
	})
	if err := WriteFile(path, []byte("content"), 0o600); err != nil {
		t.Fatalf("WriteFile over a directory removed after two sleeps: %v", err)
	}
	if b, err := os.ReadFile(path); string(b) != "content" || len(*slept) != 2 {
		t.Errorf("after WriteFile: %q, %v, sleeps %v; want the content after two sleeps", b, err, *slept)
	}

	from := filepath.Join(dir, "from")
	slept = fakeBusy(t, os.ErrNotExist, func(n int) {
		if n == 2 {
			os.WriteFile(from, []byte("new"), 0o600)
		}
	})
	if err := Rename(from, path); err != nil || len(*slept) != 2 {
		t.Fatalf("Rename of a file made after two sleeps: %v after sleeps %v", err, *slept)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("after Rename %s holds %q, want %q", path, b, "new")
	}

	gone := filepath.Join(dir, "gone")
	slept = fakeBusy(t, os.ErrNotExist, func(n int) {
		if n == 2 {
			os.WriteFile(gone, nil, 0o600)
		}
	})
	if err := Remove(gone); err != nil || len(*slept) != 2 {
		t.Fatalf("Remove of a file made after two sleeps: %v after sleeps %v", err, *slept)
	}
	if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Remove: %v", gone, err)
	}
}
