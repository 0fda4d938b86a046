package sqlite

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// crashCopy copies a store's database and log while it is open, as a
// kill -9 would leave them: what is committed is in the log, nothing was
// checkpointed or closed. (The wal-index is left behind: SQLite rebuilds
// it from the log.)
func crashCopy(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range []string{"queue.db", "queue.db-wal"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// stored checks that every id is in s with its content.
func stored(t *testing.T, s *Store, ids []mail.ID) {
	t.Helper()
	n := 0
	if err := s.Load(context.Background(), func(mail.ID, []byte, int64) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != len(ids) {
		t.Errorf("%d messages in the store, want %d", n, len(ids))
	}
	for i, id := range ids {
		if got := readAll(t, s, id); !bytes.Equal(got, body(i)) {
			t.Errorf("message %d: content of %d octets differs from what was added", i, len(got))
		}
	}
}

// Zeros are written ahead of the log in growing chunks, so only the
// commit that crosses a chunk's end appends to the file, until the log
// has its size at a checkpoint.
func TestWALWrittenAhead(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	defer s.Close()
	wal := filepath.Join(dir, "queue.db-wal")
	first := fileSize(t, wal)
	if first < walFirstChunk {
		t.Fatalf("log is %d octets after Open, want at least the first chunk, %d", first, walFirstChunk)
	}
	// A smaller target than a checkpoint's, for a short test: set
	// before the first Add hands the writer anything.
	s.wal.target = first + 6<<20
	var mu sync.Mutex
	var commits, appended int
	done := false
	s.ObserveCommits(func(time.Duration) { // on the writer, before advance
		mu.Lock()
		defer mu.Unlock()
		commits++
		if s.wal.f == nil {
			done = true
			return
		}
		if fileSize(t, wal) > s.wal.end {
			appended++
		}
	})
	content := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 1000) // 64 KB, in the database
	for i := 0; ; i++ {
		mu.Lock()
		stop := done || i == 1000
		mu.Unlock()
		if stop {
			break
		}
		addContent(t, s, mail.NewID(), content)
	}
	mu.Lock()
	defer mu.Unlock()
	if !done {
		t.Fatalf("zeros still written ahead after %d commits", commits)
	}
	// Chunks of 2 and 4 MiB after the first, then the target.
	if appended > 3 || commits < 20 {
		t.Errorf("%d of %d commits appended to the log, want at most 3 (one per chunk crossed)", appended, commits)
	}
	if got := fileSize(t, wal); got < s.wal.target {
		t.Errorf("log is %d octets, want at least %d", got, s.wal.target)
	}
}

// A store killed with zeros after its log's frames keeps every commit:
// recovery reads the frames and stops at the zeros. A log from before
// zeros were written (ending at its last frame) is recovered first, then
// extended, and keeps working across another crash.
func TestWALZerosRecovered(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	defer s.Close()
	var ids []mail.ID
	for i := range 40 {
		id := mail.NewID()
		addContent(t, s, id, body(i))
		ids = append(ids, id)
	}

	crashed := crashCopy(t, dir)
	c := openDir(t, crashed)
	stored(t, c, ids)
	c.Close()

	// Cut the log back to the end of its last frame: a log written
	// before presizing, as an upgrade finds it after a crash.
	old := crashCopy(t, dir)
	wal := filepath.Join(old, "queue.db-wal")
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	end := int64(len(bytes.TrimRight(b, "\x00")))
	frame := int64(walFrameHeader + 4096)
	end = walHeader + (end-walHeader+frame-1)/frame*frame
	if err := os.Truncate(wal, end); err != nil {
		t.Fatal(err)
	}
	o := openDir(t, old)
	defer o.Close()
	stored(t, o, ids)
	if got := fileSize(t, wal); got != end+walFirstChunk {
		t.Errorf("an old log of %d octets is %d after Open, want the first chunk of zeros after it", end, got)
	}
	for range 10 {
		id := mail.NewID()
		addContent(t, o, id, body(len(ids)))
		ids = append(ids, id)
	}
	again := openDir(t, crashCopy(t, old))
	defer again.Close()
	stored(t, again, ids)
}
