//go:build windows

// These tests run only on Windows (the Windows CI); on Linux they are
// compiled by GOOS=windows go test -c.

package safeio

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// holdOpen opens path the way a virus scanner may: sharing read and
// write but not delete, so that the file cannot be renamed or removed.
func holdOpen(t *testing.T, path string) (release func()) {
	t.Helper()
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE,
		nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	release = func() {
		if !closed {
			closed = true
			windows.CloseHandle(h)
		}
	}
	t.Cleanup(release)
	return release
}

// recordSleeps records retry's sleeps without sleeping, calling each
// with the number of sleeps so far.
func recordSleeps(t *testing.T, each func(n int)) *[]time.Duration {
	var slept []time.Duration
	old := sleep
	sleep = func(d time.Duration) {
		slept = append(slept, d)
		if each != nil {
			each(len(slept))
		}
	}
	t.Cleanup(func() { sleep = old })
	return &slept
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Rename replaces a file there, with MOVEFILE_WRITE_THROUGH; also past
// MAX_PATH, as os.Rename does.
func TestRenameReplaces(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("d", 200))
	if err := os.Mkdir(long, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, long} {
		from, to := filepath.Join(d, "from"), filepath.Join(d, strings.Repeat("t", 100))
		write(t, from, "new")
		write(t, to, "old")
		if err := Rename(from, to); err != nil {
			t.Fatalf("Rename over a file (%d characters): %v", len(to), err)
		}
		if got := read(to); got != "new" {
			t.Errorf("after Rename %s holds %q, want %q", to, got, "new")
		}
		if _, err := os.Stat(from); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after Rename: %v, want it gone", from, err)
		}
	}
}

// renameNoReplace refuses a name that is taken (fs.ErrExist, which
// renameNew takes to try the next name) and leaves both files alone.
func TestRenameNoReplaceRefusesTaken(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "from"), filepath.Join(dir, "to")
	write(t, from, "new")
	write(t, to, "old")
	if err := renameNoReplace(from, to); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("renameNoReplace onto a file: %v, want fs.ErrExist", err)
	}
	if read(from) != "new" || read(to) != "old" {
		t.Errorf("after a refused renameNoReplace: %q and %q, want both as they were", read(from), read(to))
	}
	free := filepath.Join(dir, "free")
	if err := renameNoReplace(from, free); err != nil || read(free) != "new" {
		t.Errorf("renameNoReplace to a free name: %v, %q", err, read(free))
	}
}

// A file held open without delete sharing is waited for: the rename
// and the remove go through once it is let go of.
func TestRenameAndRemoveWaitForHeldFile(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "from"), filepath.Join(dir, "to")
	write(t, from, "new")
	release := holdOpen(t, from)
	slept := recordSleeps(t, func(n int) {
		if n == 2 {
			release()
		}
	})
	if err := Rename(from, to); err != nil || len(*slept) != 2 || read(to) != "new" {
		t.Fatalf("Rename of a file held open until the second sleep: %v after sleeps %v, %s holds %q", err, *slept, to, read(to))
	}

	release = holdOpen(t, to)
	*slept = nil
	if err := Remove(to); err != nil || len(*slept) != 2 {
		t.Fatalf("Remove of a file held open until the second sleep: %v after sleeps %v", err, *slept)
	}
}

// A file held open for longer is given up on after retryLimit, with
// the sharing violation, and left where it was; so is a drop file's
// commit to a new name.
func TestRenameGivesUpOnHeldFile(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "from"), filepath.Join(dir, "to")
	write(t, from, "new")
	holdOpen(t, from)
	slept := recordSleeps(t, nil)
	total := func() (d time.Duration) {
		for _, s := range *slept {
			d += s
		}
		return d
	}
	err := Rename(from, to)
	if !errors.Is(err, windows.ERROR_SHARING_VIOLATION) || total() != retryLimit {
		t.Errorf("Rename of a file held open: %v after %v of sleeps, want ERROR_SHARING_VIOLATION after %v", err, total(), retryLimit)
	}
	if read(from) != "new" {
		t.Errorf("the held file holds %q after the failed Rename", read(from))
	}
	if err := Remove(from); !errors.Is(err, windows.ERROR_SHARING_VIOLATION) {
		t.Errorf("Remove of a file held open: %v, want ERROR_SHARING_VIOLATION", err)
	}

	*slept = nil
	held := filepath.Join(dir, "m.eml")
	write(t, held, "first")
	f, err := Create(held, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("second")
	holdOpen(t, f.Name())
	if _, err := f.CommitNew(func(n int) string { return filepath.Join(dir, "m-2.eml") }); !errors.Is(err, windows.ERROR_SHARING_VIOLATION) {
		t.Errorf("CommitNew of a file held open: %v, want ERROR_SHARING_VIOLATION", err)
	}
	if total() < retryLimit {
		t.Errorf("CommitNew gave up after %v of sleeps, want at least %v", total(), retryLimit)
	}
}
