//go:build unix

package protolog

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/dailyfile"
	"github.com/sluice-relay/sluice/internal/syncbuf"
)

type lockedBuffer = syncbuf.Buffer

// A protocol log whose disk stalls drops lines, and says so once, not
// once per line (which would put the protocol log's volume into the
// operational log); when it catches up it says how many it lost.
func TestStalledLogSaysSoOnce(t *testing.T) {
	dir := t.TempDir()
	// The day's file is a FIFO nobody reads: writes block once its
	// buffer is full, as on a hung disk.
	fifo := filepath.Join(dir, dailyfile.Name("receive", ".log", time.Now()))
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("cannot make a FIFO to stall the writer: %v", err)
	}
	var logs lockedBuffer
	l, err := Open(dir, "receive", 0, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s := l.Session("Client", "sess1", "127.0.0.1:25", "127.0.0.1:5000")
	line := "250 " + strings.Repeat("x", 200)
	for i := 0; i < 40000; i++ {
		s.Sent(line)
	}
	if n := strings.Count(logs.String(), "protocol log is behind"); n != 1 {
		t.Errorf("%d lines say the log is behind; want 1:\n%.2000s", n, logs.String())
	}
	// The disk is back.
	r, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, r); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "protocol log caught up") {
		if time.Now().After(deadline) {
			t.Fatalf("no line says the log caught up:\n%.2000s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.Close()
	<-done
	r.Close()
	if !strings.Contains(logs.String(), "lines=") {
		t.Errorf("the catch-up line does not say how many lines were lost:\n%s", logs.String())
	}
}
