package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
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
		fi, err := os.Stat(wal)
		if err != nil || fi.Size() > s.wal.end {
			appended++ // and an error, counted: t.Fatal is for the test's goroutine
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

// A commit torn by a crash (the log's end falls inside its last frame,
// in the part of the page that is zeros) is not in the store when it is
// next opened: SQLite recovers only whole frames. Zeros written from
// that unaligned end would complete the torn frame with exactly the
// zeros it lacked, its checksum would hold, and a second crash before
// any write would bring back the commit the first recovery had dropped
// (and removeOrphans and openSegments had acted on). Zeros start at the
// torn frame instead. (Found by review; failed before.)
func TestWALTornCommitStaysDropped(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	var ids []mail.ID
	for i := range 5 {
		id := mail.NewID()
		addContent(t, s, id, body(i))
		ids = append(ids, id)
	}
	// 8,370 octets: 489 in the row, two overflow pages, the last one
	// (the highest page number, so the commit frame) ends in zeros.
	addContent(t, s, mail.NewID(), bytes.Repeat([]byte("x"), 8370))
	torn := crashCopy(t, dir)
	s.Close()

	// The crash tore the commit's last frame: the file ends where its
	// zeros begin.
	wal := filepath.Join(torn, "queue.db-wal")
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	off, psz := lastCommitFrame(t, b)
	data := b[off+walFrameHeader : off+walFrameHeader+psz]
	zeros := len(data) - len(bytes.TrimRight(data, "\x00"))
	if zeros == 0 {
		t.Fatal("setup: the commit frame does not end in zeros")
	}
	cut := int64(off + walFrameHeader + psz - zeros)
	if err := os.Truncate(wal, cut); err != nil {
		t.Fatal(err)
	}

	// Control: SQLite alone recovers the torn log the same way twice.
	if n := rawCount(t, crashCopy(t, torn)); n != len(ids) {
		t.Fatalf("control: %d messages, want %d", n, len(ids))
	}

	// The store opens it: the torn commit is not there (right: never
	// acknowledged). Nothing is written; the process dies.
	s1 := openDir(t, torn)
	stored(t, s1, ids)
	if got := fileSize(t, wal); got <= cut {
		t.Fatalf("setup: log is %d octets after Open, not padded past the torn end %d", got, cut)
	}
	again := crashCopy(t, torn)
	s1.Close()

	// Recovered once more: the same store, or the dropped commit is back.
	s2 := openDir(t, again)
	defer s2.Close()
	n := 0
	if err := s2.Load(context.Background(), func(mail.ID, []byte, int64) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != len(ids) {
		t.Errorf("second recovery finds %d messages, the first found %d: the torn, unacknowledged commit came back", n, len(ids))
	}
}

// lastCommitFrame is the offset of the last frame with a commit mark
// among those whose salt matches the log's header, and the page size.
func lastCommitFrame(t *testing.T, b []byte) (off, psz int) {
	t.Helper()
	psz = int(binary.BigEndian.Uint32(b[8:]))
	salt := b[16:24]
	for o := walHeader; o+walFrameHeader+psz <= len(b); o += walFrameHeader + psz {
		if !bytes.Equal(b[o+8:o+16], salt) || binary.BigEndian.Uint32(b[o:]) == 0 {
			break
		}
		if binary.BigEndian.Uint32(b[o+4:]) != 0 {
			off = o
		}
	}
	if off == 0 {
		t.Fatal("setup: no commit frame in the log")
	}
	return off, psz
}

// rawCount counts messages with plain SQLite (no Store, no zeros), then
// crash-copies the files while it is open and counts again.
func rawCount(t *testing.T, dir string) int {
	t.Helper()
	count := func(dir string) (int, *sql.DB) {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "queue.db")+"?_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow("SELECT count(*) FROM messages").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n, db
	}
	n1, db := count(dir)
	n2, db2 := count(crashCopy(t, dir))
	db.Close()
	db2.Close()
	if n1 != n2 {
		t.Fatalf("control: plain SQLite recovers %d, then %d", n1, n2)
	}
	return n1
}
