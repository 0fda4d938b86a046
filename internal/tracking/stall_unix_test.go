//go:build unix

package tracking

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

// A tracking log whose disk stalls drops records, and says so once, not
// once per record; when it catches up it says how many it lost.
func TestStalledLogSaysSoOnce(t *testing.T) {
	dir := t.TempDir()
	// The day's file is a FIFO nobody reads: writes block once its
	// buffer is full, as on a hung disk.
	fifo := filepath.Join(dir, dailyfile.Name("track", ".jsonl", time.Now()))
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("cannot make a FIFO to stall the writer: %v", err)
	}
	var logs lockedBuffer
	l, err := Open(dir, 0, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e := Event{Event: EventSend, Source: "DELIVERY", ID: "06h0000000000001", Sender: "app@contoso.com",
		Recipients: []string{"bob@fabrikam.com"}, Reply: "250 " + strings.Repeat("x", 200)}
	for i := 0; i < 30000; i++ {
		l.Record(e)
	}
	if n := strings.Count(logs.String(), "tracking log is behind"); n != 1 {
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
	for !strings.Contains(logs.String(), "tracking log caught up") {
		if time.Now().After(deadline) {
			t.Fatalf("no line says the log caught up:\n%.2000s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.Close()
	<-done
	r.Close()
	if !strings.Contains(logs.String(), "records=") {
		t.Errorf("the catch-up line does not say how many records were lost:\n%s", logs.String())
	}
}
