package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/sluice-relay/sluice/internal/mail"
)

// segmentFiles lists the segment numbers on disk.
func segmentFiles(t *testing.T, dir string) []int64 {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	var nos []int64
	for _, e := range entries {
		if no, ok := segmentNo(e.Name()); ok {
			nos = append(nos, no)
		}
	}
	return nos
}

// segmentsFrom puts contents of more than min octets in segments of
// max octets for the test, even from a lone Add, with 4096 octets
// reserved first (a body of 7000 grows into 8192).
func segmentsFrom(t *testing.T, min int, max int64) {
	oldMin, oldMax, oldAdders, oldFirst := segmentMin, segmentMax, segmentAdders, streamFirst
	segmentMin, segmentMax, segmentAdders, streamFirst = min, max, 1, 4096
	t.Cleanup(func() { segmentMin, segmentMax, segmentAdders, streamFirst = oldMin, oldMax, oldAdders, oldFirst })
}

// streamOp writes b into a segment as Add would, returning its op for
// a batch the test commits.
func streamOp(t *testing.T, s *Store, b []byte) *op {
	t.Helper()
	head := b[:min(len(b), segmentMin+1)]
	var buf []byte
	o, err := s.stream(mail.NewID(), []byte("m"), slices.Clone(head), bytes.NewReader(b[len(head):]), &buf)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func body(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%05d\r\n", i)), 1000) } // 7000 octets

func openDir(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addContent(t *testing.T, s *Store, id mail.ID, b []byte) {
	t.Helper()
	if _, err := s.Add(context.Background(), id, []byte("m"), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, s *Store, id mail.ID) []byte {
	t.Helper()
	r, err := s.Body(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Segments fill and rotate; one is removed once nothing in it is
// referred to and a durable commit has followed; content is read back
// from segments (not the cache) after a reopen.
func TestSegmentsRotateAndReclaim(t *testing.T) {
	segmentsFrom(t, 1000, 3*8192) // three contents each
	dir := t.TempDir()
	s := openDir(t, dir)
	ctx := context.Background()
	var ids []mail.ID
	for i := range 9 {
		id := mail.NewID()
		addContent(t, s, id, body(i))
		ids = append(ids, id)
	}
	var used int
	s.db.QueryRow("SELECT count(DISTINCT seg) FROM bodies").Scan(&used)
	if files := segmentFiles(t, dir); used != 3 || len(files) != 4 {
		t.Fatalf("9 contents of 7000 octets at %d per segment are in %d segments, with %v on disk; want 3, and one more prepared", segmentMax, used, files)
	}
	// Empty the first segment; it goes with the next durable commit.
	for _, id := range ids[:3] {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	addContent(t, s, mail.NewID(), body(99))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); slices.Contains(got, 1) {
		t.Errorf("segment 1 still there after its contents were deleted and the store closed: %v", got)
	}

	s = openDir(t, dir)
	defer s.Close()
	for i, id := range ids[3:] {
		if got := readAll(t, s, id); !bytes.Equal(got, body(i+3)) {
			t.Errorf("content %d after reopen: %d octets starting %q", i+3, len(got), got[:min(len(got), 7)])
		}
	}
}

// A segment whose contents are all deleted becomes, once the deletes
// are durable, the next segment: renamed, not rewritten, and its stale
// content written over. Contents written into it read back whole after a
// reopen, and the number of files stays bounded.
func TestSegmentsRecycled(t *testing.T) {
	segmentsFrom(t, 1000, 3*8192) // three contents each
	dir := t.TempDir()
	s := openDir(t, dir)
	ctx := context.Background()
	put := func(i int) mail.ID {
		t.Helper()
		id := mail.NewID()
		addContent(t, s, id, body(i))
		return id
	}
	var kept []mail.ID
	// Round after round, three contents go and three are deleted: each
	// round fills a segment that is dead by the next.
	for round := range 8 {
		var ids []mail.ID
		for i := range 3 {
			ids = append(ids, put(round*3+i))
		}
		for _, id := range ids[:2] {
			if err := s.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		// The third of each round is deleted a round later.
		for _, id := range kept {
			if err := s.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		kept = ids[2:]
		if files := segmentFiles(t, dir); len(files) > 3+maxFree {
			t.Fatalf("round %d: %d segment files on disk (%v); want at most the active, its predecessor, the prepared one and %d free", round, len(files), files, maxFree)
		}
	}
	last := put(99)
	var seg, off int64
	if err := s.db.QueryRow("SELECT seg, off FROM bodies WHERE id = ?", string(last)).Scan(&seg, &off); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if seg < 9 || off != 0 {
		t.Fatalf("the last content is at %d in segment %d; want the start of segment 9 or later", off, seg)
	}
	// A prepared segment is zeros after what was written; a recycled
	// one still has its old contents there.
	f, err := os.Open(segmentPath(filepath.Join(dir, "segments"), seg))
	if err != nil {
		t.Fatal(err)
	}
	after := make([]byte, 7)
	_, err = f.ReadAt(after, int64(len(body(99))))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(after, make([]byte, 7)) {
		t.Errorf("segment %d holds zeros after its one content: it was written new, not recycled from a dead one", seg)
	}
	s = openDir(t, dir)
	defer s.Close()
	for i, id := range append(kept, last) {
		want := body(99)
		if i == 0 {
			want = body(7*3 + 2)
		}
		if got := readAll(t, s, id); !bytes.Equal(got, want) {
			t.Errorf("content %d after reopen: %d octets starting %q", i, len(got), got[:min(len(got), 7)])
		}
	}
}

// A segment that no row refers to (its deletes committed, or a crash
// after its write but before its rows) is removed at Open.
func TestSegmentsUnreferencedRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	s.Close()
	stray := filepath.Join(dir, "segments", "0000000000000042.seg")
	if err := os.WriteFile(stray, []byte("written, never committed"), 0o640); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir)
	defer s.Close()
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("unreferenced segment kept: %v", err)
	}
	// Numbering goes on after the highest seen, never reusing a name.
	if s.seg.activeNo <= 42 {
		t.Errorf("active segment %d, want after 42", s.seg.activeNo)
	}
	// Nothing is prepared (64 MiB of zeros) before a content needs it.
	if files := segmentFiles(t, dir); len(files) != 1 {
		t.Errorf("segments on disk before any content: %v, want the empty active one", files)
	}
}

// Content changed on disk is refused, not delivered.
func TestSegmentsChecksum(t *testing.T) {
	segmentsFrom(t, 1000, segmentMax)
	dir := t.TempDir()
	s := openDir(t, dir)
	ctx := context.Background()
	id := mail.NewID()
	addContent(t, s, id, body(1))
	s.Close()
	path := filepath.Join(dir, "segments", fmt.Sprintf("%016d.seg", segmentFiles(t, dir)[0]))
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), 100)
	f.Close()
	s = openDir(t, dir)
	defer s.Close()
	if _, err := s.Body(ctx, id); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("Body of a changed content: %v, want a checksum error", err)
	}
}

// A store written before segments keeps its contents in the database;
// they are read from there after the upgrade, and new ones go to
// segments.
func TestSegmentsUpgrade(t *testing.T) {
	segmentsFrom(t, 1000, segmentMax)
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	old := mail.NewID()
	for _, q := range []string{
		"CREATE TABLE messages (id TEXT PRIMARY KEY, meta BLOB NOT NULL) WITHOUT ROWID",
		"CREATE TABLE bodies (id TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB, in_file INTEGER NOT NULL DEFAULT 0)",
		"INSERT INTO messages VALUES ('" + string(old) + "', x'6d')",
		"INSERT INTO bodies (id, size, data) VALUES ('" + string(old) + "', 7000, x'" + fmt.Sprintf("%x", body(7)) + "')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q[:30], err)
		}
	}
	db.Close()
	s := openDir(t, dir)
	defer s.Close()
	if got := readAll(t, s, old); !bytes.Equal(got, body(7)) {
		t.Errorf("content kept in the database: %d octets", len(got))
	}
	id := mail.NewID()
	if _, err := s.Add(context.Background(), id, []byte("m"), bytes.NewReader(body(8))); err != nil {
		t.Fatal(err)
	}
	s.cache.drop(id)
	if got := readAll(t, s, id); !bytes.Equal(got, body(8)) {
		t.Errorf("new content: %d octets", len(got))
	}
	var n int
	s.db.QueryRow("SELECT count(*) FROM bodies WHERE seg IS NOT NULL").Scan(&n)
	if n != 1 {
		t.Errorf("%d contents in segments, want the new one", n)
	}
}

// Content under segmentMin stays in the database, content from it on
// goes to a segment; both read back the same after a reopen.
func TestSegmentsOnlyFromMin(t *testing.T) {
	segmentsFrom(t, 5000, segmentMax)
	dir := t.TempDir()
	s := openDir(t, dir)
	small, big := mail.NewID(), mail.NewID()
	smallBody := []byte("short\r\n")
	for id, b := range map[mail.ID][]byte{small: smallBody, big: body(3)} {
		addContent(t, s, id, b)
	}
	var inDB, inSeg int
	s.db.QueryRow("SELECT count(*) FROM bodies WHERE data IS NOT NULL AND seg IS NULL").Scan(&inDB)
	s.db.QueryRow("SELECT count(*) FROM bodies WHERE data IS NULL AND seg IS NOT NULL").Scan(&inSeg)
	if inDB != 1 || inSeg != 1 {
		t.Errorf("%d contents in the database, %d in segments; want 1 and 1", inDB, inSeg)
	}
	s.Close()
	s = openDir(t, dir)
	defer s.Close()
	if !bytes.Equal(readAll(t, s, small), smallBody) || !bytes.Equal(readAll(t, s, big), body(3)) {
		t.Error("contents differ after reopen")
	}
}

// A lone Add keeps its content in the database (one fsync); while
// another Add is in progress, content from segmentMin up goes to a
// segment as it arrives.
func TestStreamOnlyWhileOthersAdd(t *testing.T) {
	oldMin := segmentMin
	segmentMin = 1000
	t.Cleanup(func() { segmentMin = oldMin })
	s := open(t)
	ctx := context.Background()
	where := func(id mail.ID) string {
		t.Helper()
		var seg sql.NullInt64
		if err := s.db.QueryRow("SELECT seg FROM bodies WHERE id = ?", string(id)).Scan(&seg); err != nil {
			t.Fatal(err)
		}
		if seg.Valid {
			return "segment"
		}
		return "database"
	}
	lone := mail.NewID()
	addContent(t, s, lone, body(1))
	if got := where(lone); got != "database" {
		t.Errorf("a lone content went to the %s", got)
	}
	// slow is an Add whose client sends its first 500 octets and waits.
	// addFrom starts an Add of what is written to the pipe it returns.
	addFrom := func(id mail.ID) (*io.PipeWriter, chan error) {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := s.Add(ctx, id, []byte("m"), pr)
			done <- err
		}()
		return pw, done
	}
	// finish sends the rest of such an Add and waits for it.
	finish := func(pw *io.PipeWriter, done chan error, rest []byte) {
		t.Helper()
		pw.Write(rest)
		pw.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	slow := mail.NewID()
	pw, done := addFrom(slow)
	pw.Write(body(2)[:500])
	for s.adding.Load() < 1 {
		runtime.Gosched()
	}
	busy := mail.NewID()
	addContent(t, s, busy, body(3))
	if got := where(busy); got != "segment" {
		t.Errorf("a content added while another Add was in progress went to the %s", got)
	}
	// Alone again when it reads past segmentMin: the database.
	finish(pw, done, body(2)[500:])
	if got := where(slow); got != "database" {
		t.Errorf("the slow content, alone once past segmentMin, went to the %s", got)
	}
	// Alone past segmentMin, then joined by another Add: from there it
	// goes to a segment, with what it held so far.
	joined := mail.NewID()
	pw, first := addFrom(joined)
	pw.Write(body(4)[:1500])
	for s.adding.Load() < 1 {
		runtime.Gosched()
	}
	pw2, done := addFrom(mail.NewID())
	for s.adding.Load() < 2 {
		runtime.Gosched()
	}
	finish(pw, first, body(4)[1500:])
	if got := where(joined); got != "segment" {
		t.Errorf("a content joined by another Add past segmentMin went to the %s", got)
	}
	finish(pw2, done, []byte("short\r\n"))
	s.cache.drop(lone)
	s.cache.drop(slow)
	for id, want := range map[mail.ID][]byte{lone: body(1), slow: body(2), busy: body(3), joined: body(4)} {
		if got := readAll(t, s, id); !bytes.Equal(got, want) {
			t.Errorf("content %s: %d octets, want %d", id, len(got), len(want))
		}
	}
}

// A batch whose contents were written into two segments (one rotated
// out between them) makes both durable before any row refers to them.
func TestCommitSyncsEverySegmentWritten(t *testing.T) {
	segmentsFrom(t, 1000, 10000) // one content of 7000 per segment
	s := open(t)
	var synced []string
	batch := []*op{streamOp(t, s, body(0)), streamOp(t, s, body(1)), streamOp(t, s, body(2))}
	old := syncFile
	syncFile = func(f *os.File) error {
		synced = append(synced, filepath.Base(f.Name()))
		// Before the rows: a reader sees none of them yet.
		var n int
		if err := s.db.QueryRow("SELECT count(*) FROM bodies").Scan(&n); err != nil || n != 0 {
			t.Errorf("segment %s synced with %d rows committed (%v); want it before the commit", f.Name(), n, err)
		}
		return old(f)
	}
	t.Cleanup(func() { syncFile = old })
	first, last := batch[0].ext.seg.no, batch[2].ext.seg.no
	if first == last {
		t.Fatalf("all three contents in segment %d; the test wants the batch to span segments", first)
	}
	for i, err := range s.commit(context.Background(), batch) {
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	for _, o := range batch {
		if name := filepath.Base(segmentPath(s.segDir, o.ext.seg.no)); !slices.Contains(synced, name) {
			t.Errorf("segment %s holds contents of the batch and was not synced (synced: %v)", name, synced)
		}
	}
}

// A batch that puts contents into a segment whose earlier contents are
// all deleted, fills it and goes on in the next: the full segment is
// referred to by the batch's rows and must stay (it was once taken for
// dead at rotation, kept free and removed, or written over).
func TestSegmentRotatedWithBatchContentsStays(t *testing.T) {
	segmentsFrom(t, 1000, 3*8192) // three contents of 7000 fill a segment
	dir := t.TempDir()
	s := openDir(t, dir)
	ctx := context.Background()
	first := mail.NewID()
	addContent(t, s, first, body(0))
	if err := s.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The lazy delete commits with the next durable write, into segment
	// 1 too; then segment 1 holds one live content of two.
	keep := mail.NewID()
	addContent(t, s, keep, body(1))
	if err := s.Delete(ctx, keep); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, mail.NewID(), []byte("m"), bytes.NewReader(bytes.Repeat([]byte("x"), 100))); err != nil {
		t.Fatal(err) // small: stays in the database; commits the delete
	}
	var batch []*op
	for i := range 3 {
		batch = append(batch, streamOp(t, s, body(10+i)))
	}
	for i, err := range s.commit(ctx, batch) {
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	if batch[0].ext.seg.no == batch[2].ext.seg.no {
		t.Fatalf("the batch is all in segment %d; the test wants it to span a rotation", batch[0].ext.seg.no)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir)
	defer s.Close()
	for i, o := range batch {
		if got := readAll(t, s, o.id); !bytes.Equal(got, body(10+i)) {
			t.Errorf("content %d of the batch (segment %d) after reopen: %d octets", i, o.ext.seg.no, len(got))
		}
	}
}

// A segment rotated out while a content is still being written into it
// stays, though every content committed in it is deleted durably and
// later segments die and are recycled: the content being written is
// committed there later.
func TestSegmentWrittenIntoStays(t *testing.T) {
	segmentsFrom(t, 1000, 3*8192)
	dir := t.TempDir()
	s := openDir(t, dir)
	ctx := context.Background()
	before := streamOp(t, s, body(0))
	e, err := s.seg.reserve(8192) // room for all of it: no move
	if err != nil {
		t.Fatal(err)
	}
	w := &segWriter{g: s.seg, e: e}
	if err := w.write(body(1)[:3000]); err != nil {
		t.Fatal(err)
	}
	s.commit(ctx, []*op{before})
	others := []*op{streamOp(t, s, body(2)), streamOp(t, s, body(3))}
	if others[1].ext.seg.no == e.seg.no {
		t.Fatalf("segment %d not rotated out", e.seg.no)
	}
	s.commit(ctx, others)
	var dels []*op
	for _, o := range append([]*op{before}, others...) {
		dels = append(dels, &op{kind: opDelete, id: o.id})
	}
	s.commit(ctx, append(dels, &op{kind: opSync}))
	if s.seg.live[e.seg.no] != 0 {
		t.Fatalf("segment %d still has %d live contents; the test wants none", e.seg.no, s.seg.live[e.seg.no])
	}
	if !slices.Contains(segmentFiles(t, dir), e.seg.no) {
		t.Fatalf("segment %d removed while a content was being written into it", e.seg.no)
	}
	for i := range 6 {
		o := streamOp(t, s, body(20+i))
		s.commit(ctx, []*op{o})
		s.commit(ctx, []*op{{kind: opDelete, id: o.id}, {kind: opSync}})
	}
	if !slices.Contains(segmentFiles(t, dir), e.seg.no) {
		t.Fatalf("segment %d recycled or removed while a content was being written into it", e.seg.no)
	}
	if err := w.write(body(1)[3000:]); err != nil {
		t.Fatal(err)
	}
	s.seg.trim(&w.e, w.n)
	late := &op{kind: opAdd, id: mail.NewID(), meta: []byte("m"), size: w.n,
		ext: w.e, crc: w.crc}
	if errs := s.commit(ctx, []*op{late}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir)
	defer s.Close()
	if got := readAll(t, s, late.id); !bytes.Equal(got, body(1)) {
		t.Errorf("content written across rotations and recycling: %d octets", len(got))
	}
}

// Many Adds at once, of sizes around the first reservation and past
// inlineMax: their extents interleave, some grow in place, some move,
// one goes to a file of its own. Every content reads back as it was
// sent, after a reopen too.
func TestConcurrentAdds(t *testing.T) {
	segmentsFrom(t, 1000, 200000)
	dir := t.TempDir()
	s := openDir(t, dir)
	ctx := context.Background()
	want := map[mail.ID][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for i := range 25 {
				n := 500 + rng.IntN(12000)
				if g == 0 && i == 3 {
					n = inlineMax + 5000
				}
				b := make([]byte, n)
				for j := range b {
					b[j] = byte('a' + (g+i+j/7)%26)
				}
				id := mail.NewID()
				// A client that sends in small pieces, as over a network.
				if _, err := s.Add(ctx, id, []byte("m"), iotest.OneByteReader(bytes.NewReader(b))); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[id] = b
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var inSeg, inFile int
	s.db.QueryRow("SELECT count(*) FROM bodies WHERE seg IS NOT NULL").Scan(&inSeg)
	s.db.QueryRow("SELECT count(*) FROM bodies WHERE in_file").Scan(&inFile)
	if inSeg < 50 || inFile != 1 {
		t.Errorf("%d contents in segments and %d in files; want most in segments and one in a file", inSeg, inFile)
	}
	for _, reopen := range []bool{false, true} {
		if reopen {
			s.Close()
			s = openDir(t, dir)
		}
		for id, b := range want {
			s.cache.drop(id)
			if got := readAll(t, s, id); !bytes.Equal(got, b) {
				t.Fatalf("reopened %v: content %s: %d octets, want %d", reopen, id, len(got), len(b))
			}
		}
	}
	s.Close()
}

// A content refused while arriving (too big, bare LF, connection lost)
// gives its space back; nothing refers to it and the next content
// reads back whole.
func TestStreamRefused(t *testing.T) {
	segmentsFrom(t, 1000, segmentMax)
	s := open(t)
	refused := errors.New("550 5.6.11 bare LF")
	r := io.MultiReader(bytes.NewReader(body(1)), iotest.ErrReader(refused))
	if _, err := s.Add(context.Background(), mail.NewID(), []byte("m"), r); !errors.Is(err, refused) {
		t.Fatalf("Add of a refused content: %v, want the reader's error", err)
	}
	if s.seg.activeSize != 0 || s.seg.active.refs != 0 {
		t.Errorf("after a refused content: %d octets reserved, %d extents held; want 0 and 0", s.seg.activeSize, s.seg.active.refs)
	}
	id := mail.NewID()
	addContent(t, s, id, body(2))
	if got := readAll(t, s, id); !bytes.Equal(got, body(2)) {
		t.Errorf("content after a refused one: %d octets", len(got))
	}
}

// A model of the store's life: random batches of adds (some small
// enough for the database, some spanning a segment's end), deletes and
// reopens, with small segments so that they fill, rotate, die and are
// recycled often, and the contents left in sparse ones moved out. After
// every step each content still referred to reads back as it was added,
// from disk, and the files on disk stay bounded. Ops go straight to
// commit, as the writer would batch them, so the batches are the test's.
func TestSegmentsModel(t *testing.T) {
	for seed := range 12 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			segmentsFrom(t, 1000, 30000)
			relocateAtOnce(t)
			old := relocateBelow
			relocateBelow = 2
			t.Cleanup(func() { relocateBelow = old })
			rng := rand.New(rand.NewPCG(uint64(seed), 1))
			// Apart, so the steps are those the model took before it
			// relocated.
			relocations := rand.New(rand.NewPCG(uint64(seed), 3))
			moved := 0
			dir := t.TempDir()
			s := openDir(t, dir)
			defer func() { s.Close() }()
			ctx := context.Background()
			want := map[mail.ID][]byte{}
			commit := func(batch []*op) {
				t.Helper()
				for i, err := range s.commit(ctx, batch) {
					if err != nil {
						t.Fatalf("op %d of %d: %v", i, len(batch), err)
					}
				}
			}
			check := func(step int) {
				t.Helper()
				for id, b := range want {
					if got := readAll(t, s, id); !bytes.Equal(got, b) {
						t.Fatalf("step %d: content %s: %d octets, want %d", step, id, len(got), len(b))
					}
				}
			}
			for step := range 150 {
				switch r := rng.IntN(10); {
				case r < 6: // a batch of adds, and deletes riding with it
					var batch []*op
					for range 1 + rng.IntN(4) {
						b := bytes.Repeat([]byte(fmt.Sprintf("%d.%d\r\n", step, rng.IntN(1000))), 50+rng.IntN(1500))
						o := &op{kind: opAdd, id: mail.NewID(), meta: []byte("m"), body: b, size: int64(len(b))}
						if len(b) > segmentMin {
							o = streamOp(t, s, b)
						}
						batch = append(batch, o)
						want[o.id] = b
					}
					for id := range want {
						if rng.IntN(3) == 0 && len(batch) < 8 && !slices.ContainsFunc(batch, func(o *op) bool { return o.id == id }) {
							batch = append(batch, &op{kind: opDelete, id: id})
							delete(want, id)
						}
					}
					rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
					commit(batch)
				case r < 9: // deletes alone
					var batch []*op
					for id := range want {
						if rng.IntN(2) == 0 {
							batch = append(batch, &op{kind: opDelete, id: id})
							delete(want, id)
						}
					}
					if len(batch) > 0 {
						commit(batch)
					}
				default:
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = openDir(t, dir)
				}
				check(step)
				if relocations.IntN(3) == 0 {
					n, err := s.relocate(ctx)
					if err != nil {
						t.Fatalf("step %d: relocate: %v", step, err)
					}
					moved += n
					check(step)
				}
				if files := segmentFiles(t, dir); len(files) > 4+maxFree+len(want) {
					t.Fatalf("step %d: %d segment files for %d contents: %v", step, len(files), len(want), files)
				}
			}
			if moved == 0 {
				t.Error("no content was moved: the model did not exercise relocation")
			}
			t.Logf("%d contents moved", moved)
		})
	}
}

// A content too big for the database or a segment lives in a file of its
// own, without a checksum; a file cut short (a disk or an admin's
// mistake) must not be delivered as if it were the message.
func TestFileContentCutShort(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	id := mail.NewID()
	b := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), inlineMax/64+100)
	addContent(t, s, id, b)
	if got := readAll(t, s, id); !bytes.Equal(got, b) {
		t.Fatalf("content read back: %d octets, want %d", len(got), len(b))
	}
	s.Close()
	if err := os.Truncate(s.bodyPath(id), int64(len(b)/2)); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir)
	defer s.Close()
	r, err := s.Body(context.Background(), id)
	if err == nil {
		r.Close()
		t.Fatal("Body of a content cut in half: no error")
	}
	if !strings.Contains(err.Error(), fmt.Sprint(len(b)/2)) || !strings.Contains(err.Error(), fmt.Sprint(len(b))) {
		t.Errorf("Body of a content cut in half: %v, want both sizes named", err)
	}
}

// A content kept in the database whose row no longer has all of it
// (a bad restore, a hand edit, damage SQLite did not catch) is an
// error naming both sizes, not a message cut short sent on.
func TestInlineContentCutShort(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	id := mail.NewID()
	b := body(1)
	addContent(t, s, id, b)
	if _, err := s.w.ExecContext(context.Background(), "UPDATE bodies SET data = substr(data, 1, 100) WHERE id = ?", string(id)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openDir(t, dir)
	defer s.Close()
	r, err := s.Body(context.Background(), id)
	if err == nil {
		got, _ := io.ReadAll(r)
		r.Close()
		t.Fatalf("Body of a content cut to 100 octets: no error, %d octets", len(got))
	}
	if !strings.Contains(err.Error(), "100") || !strings.Contains(err.Error(), fmt.Sprint(len(b))) {
		t.Errorf("Body of a content cut short: %v, want both sizes named", err)
	}
}

// A content file no row refers to is moved aside at Open, not removed:
// usually an add a crash cut off before its commit (never acknowledged),
// but after a lost or cut write-ahead log (kill -9, then the -wal file
// deleted or truncated) it is the only copy left of an accepted message.
func TestOrphanContentFileKept(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	id := mail.NewID()
	b := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), inlineMax/64+100)
	addContent(t, s, id, b)
	if _, err := s.w.ExecContext(context.Background(), "DELETE FROM bodies WHERE id = ?", string(id)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openDir(t, dir)
	defer s.Close()
	if got := s.Orphans(); len(got) != 1 || filepath.Base(got[0]) != string(id) {
		t.Fatalf("Orphans() = %v, want the file of %s", got, id)
	}
	kept, err := os.ReadFile(filepath.Join(dir, "orphans", string(id)))
	if err != nil || !bytes.Equal(kept, b) {
		t.Fatalf("the orphan content file was not kept whole (%v, %d octets)", err, len(kept))
	}
}
