package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rows counts the committed messages, as another connection sees them.
func rows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT count(*) FROM messages").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A delete returns before its commit, is gone for readers at once, and
// is committed on its own when no durable write comes to carry it.
func TestLazyDeleteAlone(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	id := mail.NewID()
	if _, err := s.Add(ctx, id, []byte("m"), bytes.NewReader([]byte("body\r\n"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Body(ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Body after Delete: %v, want ErrNotFound", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rows(t, s) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("lazy delete never committed without a durable write to carry it")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := s.deleting.Load(id); ok {
		t.Error("committed delete still marked as pending")
	}
}

// A delete followed by an add is committed with it, in one transaction.
func TestLazyDeleteRidesWithAdd(t *testing.T) {
	// The delete waits for the add however long the test takes to send
	// it: at 50 ms a stalled test goroutine saw it commit alone.
	old := lazyWait
	lazyWait = time.Hour
	t.Cleanup(func() { lazyWait = old })
	s := open(t)
	ctx := context.Background()
	var commits atomic.Int32
	done := make(chan struct{}, 16)
	s.ObserveCommits(func(time.Duration) { commits.Add(1); done <- struct{}{} })
	a, b := mail.NewID(), mail.NewID()
	if _, err := s.Add(ctx, a, []byte("m"), bytes.NewReader([]byte("a\r\n"))); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	// Once the writer holds the delete, it must wait for the add: a
	// commit now is the delete alone. (The 100 ms only widens the window
	// to see one; the writer would wait an hour.)
	for len(s.ops) > 0 {
		runtime.Gosched()
	}
	select {
	case <-done:
		t.Fatal("the delete was committed alone, without waiting for a durable write")
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := s.Add(ctx, b, []byte("m"), bytes.NewReader([]byte("b\r\n"))); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, s); n != 1 {
		t.Errorf("%d messages committed, want 1", n)
	}
	s.Close()
	if n := commits.Load(); n != 2 {
		t.Errorf("%d commits for add, delete, add; want 2 (the delete rides with the second add)", n)
	}
}

// Content is served from memory after Add up to cacheMax, and from the
// database beyond it; both read the same.
func TestBodyCache(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	var ids []mail.ID
	for i := range cacheMax/(100<<10) + 10 {
		id := mail.NewID()
		body := bytes.Repeat([]byte(fmt.Sprintf("%07d\r\n", i)), 100<<10/9)
		if _, err := s.Add(ctx, id, []byte("m"), bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if s.cache.bytes > cacheMax {
		t.Fatalf("cache holds %d bytes, more than %d", s.cache.bytes, cacheMax)
	}
	first, _ := s.cache.get(ids[0])
	last, _ := s.cache.get(ids[len(ids)-1])
	if first == nil || last != nil {
		t.Fatalf("cached: first %v, last %v; want the first cached and the last not", first != nil, last != nil)
	}
	for i, id := range []mail.ID{ids[0], ids[len(ids)-1]} {
		r, err := s.Body(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		if want := fmt.Sprintf("%07d\r\n", []int{0, len(ids) - 1}[i]); !bytes.HasPrefix(got, []byte(want)) || len(got) != 100<<10/9*9 {
			t.Errorf("body of %s: %d bytes starting %q", id, len(got), got[:9])
		}
	}
	s.Delete(ctx, ids[0])
	if _, ok := s.cache.get(ids[0]); ok || s.cache.bytes > cacheMax-100<<10 {
		t.Errorf("deleted content still cached (%d bytes cached)", s.cache.bytes)
	}
}

// A cached content's buffer goes back to the pool only when it is
// deleted and its last reader is closed: a reader still open when the
// message is deleted reads what was stored, not the next message.
func TestBodyCacheReaderOutlivesDelete(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	first := bytes.Repeat([]byte("first\r\n"), 1000)
	id := mail.NewID()
	if _, err := s.Add(ctx, id, []byte("m"), bytes.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	r, err := s.Body(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 7)
	io.ReadFull(r, head)
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	for range 20 { // would take the buffer from the pool if it were there
		if _, err := s.Add(ctx, mail.NewID(), []byte("m"), bytes.NewReader(bytes.Repeat([]byte("other\r\n"), 1000))); err != nil {
			t.Fatal(err)
		}
	}
	rest, _ := io.ReadAll(r)
	r.Close()
	if got := append(head, rest...); !bytes.Equal(got, first) {
		t.Fatalf("content read across its delete changed: %q...", got[:min(len(got), 40)])
	}
}

// A segment emptied by a lazy delete is freed (to be recycled and written
// over) only after a commit that syncs the log. A batch that must be
// durable but changes no row (Load's sync, an Update of a message already
// gone) commits no page, and SQLite syncs nothing for it: the delete is
// still only in the page cache, and a power loss brings back its row,
// which must find its content where it was.
func TestSegmentFreedOnlyOnceItsLazyDeleteIsSynced(t *testing.T) {
	segmentsFrom(t, 1000, 8192) // one content of 7000 per segment
	s := open(t)
	ctx := context.Background()
	gone := mail.NewID()
	addContent(t, s, gone, body(0))
	addContent(t, s, mail.NewID(), body(1)) // the next segment: gone's is no longer active
	s.seg.mu.Lock()
	seg := s.seg.at[gone].seg
	s.seg.mu.Unlock()
	free := func() bool {
		s.seg.mu.Lock()
		defer s.seg.mu.Unlock()
		return slices.Contains(s.seg.free, seg)
	}
	if err := s.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	// The lazy delete commits alone, at synchronous NORMAL.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, pending := s.deleting.Load(gone); !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lazy delete never committed")
		}
	}
	if err := s.Load(ctx, func(mail.ID, []byte, int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, mail.NewID(), []byte("m")); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Update of an unknown message: %v", err)
	}
	if free() {
		t.Fatalf("segment %d free for reuse after commits that changed nothing, so synced nothing: its lazy delete is not durable", seg)
	}
	// A commit that writes syncs the log, and the delete with it.
	if _, err := s.Add(ctx, mail.NewID(), []byte("m"), bytes.NewReader([]byte("x\r\n"))); err != nil {
		t.Fatal(err)
	}
	if !free() {
		t.Errorf("segment %d not freed after a durable commit followed its delete", seg)
	}
}

// Close syncs a WAL that another connection (an operator's sqlite3)
// keeps before it removes segments: SQLite checkpoints and deletes the
// log only at the last connection's close, so the lazy deletes in it,
// committed without a sync, were not durable when the segments they
// freed were removed. (Found by review.)
func TestCloseSyncsTheLogAnotherConnectionKeeps(t *testing.T) {
	segmentsFrom(t, 1000, 8192) // one content of 7000 per segment
	dir := t.TempDir()
	s := openDir(t, dir)
	op, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	var n int
	if err := op.QueryRow("SELECT count(*) FROM messages").Scan(&n); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	gone := mail.NewID()
	addContent(t, s, gone, body(0))
	addContent(t, s, mail.NewID(), body(1))
	if err := s.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	var synced []string
	old := syncFile
	syncFile = func(f *os.File) error {
		synced = append(synced, filepath.Base(f.Name()))
		return old(f)
	}
	t.Cleanup(func() { syncFile = old })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(synced, "queue.db-wal") {
		t.Errorf("synced at Close: %q; want the log the operator's connection keeps", synced)
	}
}
