package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
)

// relocateAtOnce makes every sealed segment old enough to be emptied.
func relocateAtOnce(t *testing.T) {
	old := relocateAfter
	relocateAfter = 0
	t.Cleanup(func() { relocateAfter = old })
}

// commitAll commits a batch as the writer would, and fails on any error.
func commitAll(t *testing.T, s *Store, batch []*op) {
	t.Helper()
	for i, err := range s.commit(context.Background(), batch) {
		if err != nil {
			t.Fatalf("op %d of %d: %v", i, len(batch), err)
		}
	}
}

// segmentDisk is the number of segment files and the octets they take.
func segmentDisk(t *testing.T, dir string) (int, int64) {
	t.Helper()
	var n int64
	files := segmentFiles(t, dir)
	for _, no := range files {
		n += fileSize(t, segmentPath(filepath.Join(dir, "segments"), no))
	}
	return len(files), n
}

// segOf is the segment a content's row refers to.
func segOf(t *testing.T, s *Store, id mail.ID) int64 {
	t.Helper()
	var seg int64
	if err := s.db.QueryRow("SELECT seg FROM bodies WHERE id = ?", string(id)).Scan(&seg); err != nil {
		t.Fatal(err)
	}
	return seg
}

// content64 is a content of 64 KiB.
func content64(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%06d\r\n", i)), 64<<10/8) }

// The review's case: 2,000 contents of 64 KiB in segments of 8 MiB,
// then all deleted but every 200th. Before relocation 640 KiB of live
// content held more than a hundred MiB in a dozen files; the old sparse
// segments must go, leaving the active one, the one prepared after it
// and those kept to be reused, and every content must read back as it
// was added, after a reopen too.
func TestRelocateSparseSegments(t *testing.T) {
	segmentsFrom(t, 1000, 8<<20)
	relocateAtOnce(t)
	dir := t.TempDir()
	s := openDir(t, dir)
	defer func() { s.Close() }()
	var all []*op
	for start := 0; start < 2000; start += 100 {
		var batch []*op
		for i := start; i < start+100; i++ {
			batch = append(batch, streamOp(t, s, content64(i)))
		}
		commitAll(t, s, batch)
		all = append(all, batch...)
	}
	kept := map[mail.ID][]byte{}
	var dels []*op
	for i, o := range all {
		if i%200 == 0 {
			kept[o.id] = content64(i)
			continue
		}
		dels = append(dels, &op{kind: opDelete, id: o.id})
	}
	commitAll(t, s, dels)
	files, octets := segmentDisk(t, dir)
	t.Logf("before: %d contents of 64 KiB live in %d segment files of %d octets", len(kept), files, octets)
	if _, err := s.relocate(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, octets = segmentDisk(t, dir)
	t.Logf("after: %d segment files of %d octets", files, octets)
	if max := 2 + maxFree; files > max {
		t.Errorf("%d segment files after relocation (%v); want at most %d: the active one, the next and %d free", files, segmentFiles(t, dir), max, maxFree)
	}
	var used int
	s.db.QueryRow("SELECT count(DISTINCT seg) FROM bodies").Scan(&used)
	if used != 1 {
		t.Errorf("the %d contents left are in %d segments; want the active one", len(kept), used)
	}
	for reopen := range 2 {
		for id, b := range kept {
			if got := readAll(t, s, id); !bytes.Equal(got, b) {
				t.Fatalf("reopened %d times: content %s: %d octets differ from the %d added", reopen, id, len(got), len(b))
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		files, octets = segmentDisk(t, dir)
		t.Logf("closed: %d segment files of %d octets", files, octets)
		if octets > segmentMax {
			t.Errorf("closed, segments take %d octets for %d of content; want at most one segment, %d", octets, 64<<10*len(kept), segmentMax)
		}
		s = openDir(t, dir)
	}
}

// A segment still fresh, or still dense, is left alone: its contents
// are mostly about to be delivered, or moving them frees little.
func TestRelocateLeavesFreshAndDenseSegments(t *testing.T) {
	segmentsFrom(t, 1000, 3*8192) // three contents of 7000 each
	dir := t.TempDir()
	s := openDir(t, dir)
	defer s.Close()
	ctx := context.Background()
	var ids []mail.ID
	for i := range 7 {
		id := mail.NewID()
		addContent(t, s, id, body(i))
		ids = append(ids, id)
	}
	// Segment 1 keeps one content of three, segment 2 all three.
	for _, id := range ids[1:3] {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	count(t, s)
	if n, err := s.relocate(ctx); err != nil || n != 0 {
		t.Errorf("relocate just after the segments were sealed: %d moved (%v); want none", n, err)
	}
	relocateAtOnce(t)
	old := relocateBelow
	relocateBelow = 2 // a segment less than half full is sparse
	t.Cleanup(func() { relocateBelow = old })
	if n, err := s.relocate(ctx); err != nil || n != 1 {
		t.Errorf("relocate: %d moved (%v); want 1, the one content of segment 1", n, err)
	}
	if seg := segOf(t, s, ids[3]); seg != 2 {
		t.Errorf("a content of the full segment 2 was moved to %d", seg)
	}
	if seg := segOf(t, s, ids[0]); seg == 1 {
		t.Error("the one content left in segment 1 was not moved")
	}
	s.seg.mu.Lock()
	dead := s.seg.live[1] == 0 && (slices.Contains(s.seg.free, 1) || !slices.Contains(segmentFiles(t, dir), 1))
	s.seg.mu.Unlock()
	if !dead {
		t.Errorf("segment 1 neither free nor removed once emptied: %v on disk", segmentFiles(t, dir))
	}
	for i, id := range ids {
		if i == 1 || i == 2 {
			continue
		}
		s.cache.drop(id)
		if got := readAll(t, s, id); !bytes.Equal(got, body(i)) {
			t.Errorf("content %d: %d octets differ", i, len(got))
		}
	}
}

// crashCopyAll copies a store as a kill -9 would leave it, its segments
// too.
func crashCopyAll(t *testing.T, from string) string {
	t.Helper()
	to := crashCopy(t, from)
	if err := os.MkdirAll(filepath.Join(to, "segments"), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, no := range segmentFiles(t, from) {
		b, err := os.ReadFile(segmentPath(filepath.Join(from, "segments"), no))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(segmentPath(filepath.Join(to, "segments"), no), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// sparseStore leaves one content in each of three sealed segments
// (contents 1, 4 and 7 of ten) and none in the active one; a segment
// less than half full is sparse.
func sparseStore(t *testing.T, dir string) (*Store, map[mail.ID][]byte) {
	t.Helper()
	segmentsFrom(t, 1000, 3*8192)
	relocateAtOnce(t)
	old := relocateBelow
	relocateBelow = 2
	t.Cleanup(func() { relocateBelow = old })
	s := openDir(t, dir)
	ctx := context.Background()
	kept := map[mail.ID][]byte{}
	for i := range 10 {
		id := mail.NewID()
		addContent(t, s, id, body(i))
		s.cache.drop(id)
		if i%3 == 1 && i < 9 {
			kept[id] = body(i)
			continue
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	count(t, s)
	return s, kept
}

// A crash after the copies were written and synced, before the commit
// that points the rows at them: every content reads from where it was,
// the segment that held only copies is gone at the next Open, and
// relocating again there works.
func TestRelocateCrashBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	s, kept := sparseStore(t, dir)
	was := map[mail.ID]int64{}
	for id := range kept {
		was[id] = segOf(t, s, id)
	}
	ops, err := s.copyOut(s.seg.sparse(time.Now(), relocatePass))
	if err != nil || len(ops) != len(kept) {
		t.Fatalf("copyOut: %d copies (%v); want %d", len(ops), err, len(kept))
	}
	copies := ops[0].ext.seg.no
	crashed := crashCopyAll(t, dir)
	for _, o := range ops {
		s.seg.release(o.ext)
	}
	s.Close()

	c := openDir(t, crashed)
	defer func() { c.Close() }()
	if slices.Contains(segmentFiles(t, crashed), copies) {
		t.Errorf("segment %d, holding only copies no row refers to, still there after Open: %v", copies, segmentFiles(t, crashed))
	}
	for id, b := range kept {
		if seg := segOf(t, c, id); seg != was[id] {
			t.Errorf("content %s refers to segment %d after the crash; want %d, where it was", id, seg, was[id])
		}
		if got := readAll(t, c, id); !bytes.Equal(got, b) {
			t.Errorf("content %s after the crash: %d octets differ", id, len(got))
		}
	}
	if n, err := c.relocate(context.Background()); err != nil || n != len(kept) {
		t.Fatalf("relocate after the crash: %d moved (%v); want %d", n, err, len(kept))
	}
	c.Close()
	c = openDir(t, crashed)
	for id, b := range kept {
		if got := readAll(t, c, id); !bytes.Equal(got, b) {
			t.Errorf("content %s relocated after the crash, reopened: %d octets differ", id, len(got))
		}
	}
}

// A content deleted while its copy is being made stays deleted: the
// move finds no row at the place it copied from and gives its copy up,
// whether the delete committed before it or rides in its batch.
func TestRelocateDeletedNotResurrected(t *testing.T) {
	dir := t.TempDir()
	s, kept := sparseStore(t, dir)
	defer func() { s.Close() }()
	ctx := context.Background()
	ops, err := s.copyOut(s.seg.sparse(time.Now(), relocatePass))
	if err != nil || len(ops) != 3 {
		t.Fatalf("copyOut: %d copies (%v); want 3", len(ops), err)
	}
	before, after := ops[0].id, ops[1].id
	if err := s.Delete(ctx, before); err != nil {
		t.Fatal(err)
	}
	count(t, s) // commits the delete
	commitAll(t, s, []*op{ops[2]})
	errs := s.commit(ctx, []*op{ops[0], ops[1], {kind: opDelete, id: after}})
	if !errors.Is(errs[0], queue.ErrNotFound) || errs[1] != nil || errs[2] != nil {
		t.Fatalf("moves of a deleted content, of a content deleted in the same batch, the delete: %v", errs)
	}
	delete(kept, before)
	delete(kept, after)
	for reopen := range 2 {
		for _, id := range []mail.ID{before, after} {
			if _, err := s.Body(ctx, id); !errors.Is(err, queue.ErrNotFound) {
				t.Errorf("reopened %d times: content deleted during its move: %v; want not found", reopen, err)
			}
		}
		if n := count(t, s); n != len(kept) {
			t.Errorf("reopened %d times: %d messages; want %d", reopen, n, len(kept))
		}
		for id, b := range kept {
			if got := readAll(t, s, id); !bytes.Equal(got, b) {
				t.Errorf("content %s: %d octets differ", id, len(got))
			}
		}
		s.Close()
		s = openDir(t, dir)
	}
	if n := len(s.seg.at); n != len(kept) {
		t.Errorf("%d contents in segments; want %d", n, len(kept))
	}
}

// A delivery reading a content from its old segment while the move
// commits reads it whole: the segment is neither reused nor removed
// until the read is done.
func TestRelocateWhileReading(t *testing.T) {
	dir := t.TempDir()
	s, kept := sparseStore(t, dir)
	defer s.Close()
	ctx := context.Background()
	var id mail.ID
	for id = range kept {
		break
	}
	from := segOf(t, s, id)
	// The first read from the old segment (the delivery's) stops
	// halfway; the relocation's own reads go on.
	reading, resume := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	old := readAt
	readAt = func(f *os.File, l location, dst []byte) ([]byte, error) {
		if l.seg == from && held.CompareAndSwap(false, true) {
			close(reading)
			<-resume
		}
		return old(f, l, dst)
	}
	t.Cleanup(func() { readAt = old })
	got := make(chan []byte)
	go func() {
		b, ok, err := s.seg.read(id, nil)
		if !ok || err != nil {
			t.Errorf("read from the old segment: %v %v", ok, err)
		}
		got <- b
	}()
	<-reading
	if n, err := s.relocate(ctx); err != nil || n != len(kept) {
		t.Fatalf("relocate: %d moved (%v); want %d", n, err, len(kept))
	}
	// Another durable commit: removeDead runs again.
	addContent(t, s, mail.NewID(), []byte("small\r\n"))
	s.seg.mu.Lock()
	freed := slices.Contains(s.seg.free, from)
	s.seg.mu.Unlock()
	if freed || !slices.Contains(segmentFiles(t, dir), from) {
		t.Errorf("segment %d freed or removed while a read from it was under way (free %v)", from, freed)
	}
	close(resume)
	if b := <-got; !bytes.Equal(b, kept[id]) {
		t.Errorf("content read across its move: %d octets differ", len(b))
	}
	addContent(t, s, mail.NewID(), []byte("small\r\n"))
	s.seg.mu.Lock()
	gone := s.seg.live[from] == 0 && (slices.Contains(s.seg.free, from) || !slices.Contains(segmentFiles(t, dir), from))
	s.seg.mu.Unlock()
	if !gone {
		t.Errorf("segment %d neither free nor removed once its last read was done", from)
	}
}

// Relocation passes run while sessions add, deliveries read and delete,
// all through the writer: every read is whole, every content left reads
// back as added after a reopen, and none deleted comes back.
func TestRelocateConcurrent(t *testing.T) {
	segmentsFrom(t, 1000, 30000)
	relocateAtOnce(t)
	old := relocateBelow
	relocateBelow = 2
	t.Cleanup(func() { relocateBelow = old })
	dir := t.TempDir()
	s := openDir(t, dir)
	ctx := context.Background()
	var mu sync.Mutex
	want := map[mail.ID][]byte{}
	var gone []mail.ID
	stop := make(chan struct{})
	relocated := make(chan int)
	go func() {
		moved := 0
		for {
			select {
			case <-stop:
				relocated <- moved
				return
			default:
			}
			n, err := s.relocate(ctx)
			if err != nil {
				t.Error(err)
			}
			moved += n
		}
	}()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []mail.ID
			for i := range 60 {
				id := mail.NewID()
				b := body(g*1000 + i)
				if _, err := s.Add(ctx, id, []byte("m"), bytes.NewReader(b)); err != nil {
					t.Error(err)
					return
				}
				s.cache.drop(id)
				mine = append(mine, id)
				mu.Lock()
				want[id] = b
				mu.Unlock()
				// Deliver two of every three, some time later; read
				// one still waiting.
				if i%3 != 0 && len(mine) > 4 {
					d := mine[len(mine)-4]
					mu.Lock()
					wb := want[d]
					delete(want, d)
					gone = append(gone, d)
					mu.Unlock()
					r, err := s.Body(ctx, d)
					if err != nil {
						t.Errorf("content %s read during relocation: %v", d, err)
						return
					}
					got, err := io.ReadAll(r)
					r.Close()
					if err != nil || !bytes.Equal(got, wb) {
						t.Errorf("content %s read during relocation: %d octets differ (%v)", d, len(got), err)
					}
					if err := s.Delete(ctx, d); err != nil {
						t.Error(err)
					}
					mine = slices.DeleteFunc(mine, func(x mail.ID) bool { return x == d })
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	moved := <-relocated
	t.Logf("%d contents moved while %d were added", moved, 240)
	if moved == 0 {
		t.Error("no content moved: the test did not exercise relocation")
	}
	for reopen := range 2 {
		for id, b := range want {
			if got := readAll(t, s, id); !bytes.Equal(got, b) {
				t.Fatalf("reopened %d times: content %s: %d octets differ", reopen, id, len(got))
			}
		}
		for _, id := range gone {
			if _, err := s.Body(ctx, id); !errors.Is(err, queue.ErrNotFound) {
				t.Fatalf("reopened %d times: deleted content %s: %v, want not found", reopen, id, err)
			}
		}
		if n := count(t, s); n != len(want) {
			t.Errorf("reopened %d times: %d messages, want %d", reopen, n, len(want))
		}
		s.Close()
		s = openDir(t, dir)
	}
	s.Close()
}
