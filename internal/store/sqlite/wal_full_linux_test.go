//go:build linux

package sqlite

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sluice-relay/sluice/internal/mail"
)

// A disk that fills while the zeros are written (here a file size
// limit, so write fails with EFBIG) leaves the log as it was, apart from
// the torn frame at its end, and the store works.
func TestLogPresizeDiskFull(t *testing.T) {
	smallLog(t)
	dir := t.TempDir()
	s := openDir(t, dir)
	for i := range 5 {
		addContent(t, s, mail.NewID(), body(i))
	}
	d := crashCopy(t, dir)
	s.Close()
	wal := filepath.Join(d, "queue.db-wal")
	cut := fileSize(t, wal) - 100 // the last commit torn
	if err := os.Truncate(wal, cut); err != nil {
		t.Fatal(err)
	}
	want := rawCount(t, crashCopy(t, d))

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(cut + 3*(walFrameHeader+4096))
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skip(err)
	}
	p, err := Open(d, Options{PresizeLog: true})
	syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != cut {
		t.Errorf("log is %d octets after a failed presize, want %d", len(b), cut)
	}
	frame := int64(walFrameHeader + 4096)
	from := walHeader + (cut-walHeader)/frame*frame
	if len(bytes.Trim(b[from:], "\x00")) != 0 {
		t.Errorf("setup: the torn frame at %d was not zeroed: presize did not run", from)
	}
	if n := count(t, p); n != want {
		t.Errorf("%d messages, plain SQLite %d", n, want)
	}
	id := mail.NewID()
	addContent(t, p, id, body(9))
	again := crashCopy(t, d)
	p.Close()
	a := openDir(t, again)
	defer a.Close()
	if n := count(t, a); n != want+1 {
		t.Errorf("after a commit and a crash: %d messages, want %d", n, want+1)
	}
	if got := readAll(t, a, id); !bytes.Equal(got, body(9)) {
		t.Errorf("content of %d octets differs", len(got))
	}
}
