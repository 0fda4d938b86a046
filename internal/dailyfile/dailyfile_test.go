package dailyfile

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A write that fails (the disk was full for a moment) costs the lines
// then buffered, not the rest of the day: the file is opened again for
// the next line.
func TestWriteAfterAFailedFlush(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	w, err := New(dir, "track", ".jsonl", 0, slog.New(slog.DiscardHandler), func() time.Time { return day })
	if err != nil {
		t.Fatal(err)
	}
	w.Write(day, []byte("one"))
	w.Flush()
	w.f.Close() // the next write to the file fails, as on a full disk
	w.Write(day, []byte("lost"))
	w.Flush()
	w.Write(day, []byte("three"))
	w.Close()
	b, err := os.ReadFile(filepath.Join(dir, "track-20261124.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "one\nthree\n" {
		t.Errorf("file holds %q; want %q", got, "one\nthree\n")
	}
}
