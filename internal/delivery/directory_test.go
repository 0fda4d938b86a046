package delivery

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Whether a file is in the way of a drop directory is seen by looking at
// the path, not read from the error: on Windows syscall.ENOTDIR is
// ERROR_PATH_NOT_FOUND, which MkdirAll also returns for a drive the
// account cannot see.
func TestDirReplyFileInTheWay(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	const inTheWay = "a file is in the way of the directory"
	for _, tc := range []struct {
		name string
		path string
		err  error // nil: MkdirAll's own
		want bool  // the reply says a file is in the way
	}{
		{name: "the directory is a file", path: file, want: true},
		{name: "a file above it", path: filepath.Join(file, "drop"), want: true},
		{name: "a file two above it", path: filepath.Join(file, "a", "drop"), want: true},
		{name: "ENOTDIR with nothing in the way", path: filepath.Join(tmp, "missing", "drop"),
			err: &fs.PathError{Op: "mkdir", Path: filepath.Join(tmp, "missing"), Err: syscall.ENOTDIR}},
		{name: "EEXIST with nothing in the way", path: filepath.Join(tmp, "missing", "drop"),
			err: &fs.PathError{Op: "mkdir", Path: filepath.Join(tmp, "missing"), Err: syscall.EEXIST}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err
			if err == nil {
				if err = os.MkdirAll(tc.path, 0o750); err == nil {
					t.Fatalf("MkdirAll(%s) worked", tc.path)
				}
			}
			r := dirReply("open", tc.path, err)
			if got := strings.Contains(r.Text, inTheWay); got != tc.want {
				t.Errorf("dirReply = %q; want %q in it: %v", r.Error(), inTheWay, tc.want)
			}
		})
	}
}

// Windows' error texts end with a full stop, which the advice after a
// semicolon followed: "Access is denied.; give ...".
func TestDirReplyNoFullStopBeforeAdvice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drop")
	r := dirReply("open", path, &fs.PathError{Op: "mkdir", Path: path, Err: errors.New("The device is not ready.")})
	if want := "cannot open drop directory " + path + ": The device is not ready; check"; !strings.HasPrefix(r.Text, want) {
		t.Errorf("dirReply = %q; want %q...", r.Text, want)
	}
}
