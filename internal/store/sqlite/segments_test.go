package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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

// segmentsFrom puts contents of min octets and more in segments of about
// max octets for the test.
func segmentsFrom(t *testing.T, min int, max int64) {
	oldMin, oldMax, oldBatch := segmentMin, segmentMax, segmentBatch
	segmentMin, segmentMax, segmentBatch = min, max, 1
	t.Cleanup(func() { segmentMin, segmentMax, segmentBatch = oldMin, oldMax, oldBatch })
}

func body(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%05d\r\n", i)), 1000) } // 7000 octets

func openDir(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
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
	segmentsFrom(t, 1000, 20000) // three contents each
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
	segmentsFrom(t, 1000, 20000) // three contents each
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

// A lone content stays in the database (one fsync) unless other ops
// wait; two or more in one commit go to a segment together (one write,
// one fsync more for all).
func TestPlaceByBatch(t *testing.T) {
	segmentsFrom(t, 1000, segmentMax)
	segmentBatch = 2
	s := open(t)
	add := func(i int) *op { return &op{kind: opAdd, id: mail.NewID(), body: body(i)} }
	lone := add(1)
	if err := s.place([]*op{lone, {kind: opDelete, id: mail.NewID()}}, false); err != nil {
		t.Fatal(err)
	}
	if lone.segmented {
		t.Error("a lone content went to a segment while nothing else waited")
	}
	lone = add(4)
	if err := s.place([]*op{lone}, true); err != nil {
		t.Fatal(err)
	}
	if !lone.segmented {
		t.Error("a lone content stayed in the database while other ops waited for the writer")
	}
	a, b, small := add(2), add(3), &op{kind: opAdd, id: mail.NewID(), body: []byte("x\r\n")}
	if err := s.place([]*op{a, small, b}, false); err != nil {
		t.Fatal(err)
	}
	if !a.segmented || !b.segmented || small.segmented {
		t.Fatalf("segmented: %v %v, small %v; want the two big ones only", a.segmented, b.segmented, small.segmented)
	}
	for _, o := range []*op{a, b} {
		got, err := readSegment(s.segDir, o.seg, o.off, int64(len(o.body)), o.crc, nil)
		if err != nil || !bytes.Equal(got, o.body) {
			t.Errorf("content at %d: %v", o.off, err)
		}
	}
}

// A batch whose contents fill one segment and go on in the next makes
// both durable before any row refers to them.
func TestPlaceSyncsAcrossRotation(t *testing.T) {
	segmentsFrom(t, 1000, 10000) // two contents of 7000 fill a segment
	s := open(t)
	var synced []string
	old := syncFile
	syncFile = func(f *os.File) error {
		synced = append(synced, filepath.Base(f.Name()))
		return old(f)
	}
	t.Cleanup(func() { syncFile = old })
	var batch []*op
	for i := range 3 {
		batch = append(batch, &op{kind: opAdd, id: mail.NewID(), body: body(i)})
	}
	if err := s.place(batch, false); err != nil {
		t.Fatal(err)
	}
	first, last := batch[0].seg, batch[2].seg
	if first == last {
		t.Fatalf("all three contents in segment %d; the test wants the batch to span two", first)
	}
	for _, no := range []int64{first, last} {
		if name := filepath.Base(segmentPath(s.segDir, no)); !slices.Contains(synced, name) {
			t.Errorf("segment %s holds contents of the batch and was not synced (synced: %v)", name, synced)
		}
	}
}

// A batch that puts contents into a segment whose earlier contents are
// all deleted, fills it and goes on in the next: the full segment is
// referred to by the batch's rows and must stay (it was once taken for
// dead at rotation, kept free and removed, or written over).
func TestSegmentRotatedWithBatchContentsStays(t *testing.T) {
	segmentsFrom(t, 1000, 20000) // three contents of 7000 fill a segment
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
	var ids []mail.ID
	for i := range 3 {
		id := mail.NewID()
		ids = append(ids, id)
		batch = append(batch, &op{kind: opAdd, id: id, meta: []byte("m"), body: body(10 + i), size: int64(len(body(10 + i)))})
	}
	for i, err := range s.commit(ctx, batch) {
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	if batch[0].seg == batch[2].seg {
		t.Fatalf("the batch is all in segment %d; the test wants it to span a rotation", batch[0].seg)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir)
	defer s.Close()
	for i, id := range ids {
		if got := readAll(t, s, id); !bytes.Equal(got, body(10+i)) {
			t.Errorf("content %d of the batch (segment %d) after reopen: %d octets", i, batch[i].seg, len(got))
		}
	}
}

// A model of the store's life: random batches of adds (some small
// enough for the database, some spanning a segment's end), deletes and
// reopens, with small segments so that they fill, rotate, die and are
// recycled often. After every step each content still referred to reads
// back as it was added, from disk, and the files on disk stay bounded.
// Ops go straight to commit, as the writer would batch them, so the
// batches are the test's.
func TestSegmentsModel(t *testing.T) {
	for seed := range 12 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			segmentsFrom(t, 1000, 30000)
			segmentBatch = 1 + seed%2
			rng := rand.New(rand.NewPCG(uint64(seed), 1))
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
						id := mail.NewID()
						batch = append(batch, &op{kind: opAdd, id: id, meta: []byte("m"), body: b, size: int64(len(b))})
						want[id] = b
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
				if files := segmentFiles(t, dir); len(files) > 4+maxFree+len(want) {
					t.Fatalf("step %d: %d segment files for %d contents: %v", step, len(files), len(want), files)
				}
			}
		})
	}
}
