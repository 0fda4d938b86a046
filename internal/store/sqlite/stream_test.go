package sqlite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// After an fdatasync of a segment fails, nothing written into it before
// is committed, though a later fdatasync of the same file succeeds: on
// Linux a failed writeback is reported once and its pages are forgotten.
// New contents go to a new segment.
func TestSyncFailureFailsSegment(t *testing.T) {
	segmentsFrom(t, 1000, segmentMax)
	s := open(t)
	ctx := context.Background()
	a := streamOp(t, s, body(1))
	b := streamOp(t, s, body(2)) // written; its op not with the writer yet
	if a.ext.seg.no != b.ext.seg.no {
		t.Fatalf("contents in segments %d and %d; the test wants one", a.ext.seg.no, b.ext.seg.no)
	}
	old := syncFile
	fail := true
	syncFile = func(f *os.File) error {
		if fail {
			fail = false
			return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: errors.New("input/output error")}
		}
		return old(f)
	}
	t.Cleanup(func() { syncFile = old })
	if errs := s.commit(ctx, []*op{a}); errs[0] == nil {
		t.Fatal("a batch whose segment failed to sync committed")
	}
	if errs := s.commit(ctx, []*op{b}); errs[0] == nil {
		t.Errorf("content written into segment %d before its fdatasync failed was committed later", b.ext.seg.no)
	}
	c := streamOp(t, s, body(3))
	if c.ext.seg.no == a.ext.seg.no {
		t.Errorf("a new content went into segment %d, which failed to sync", a.ext.seg.no)
	}
	if errs := s.commit(ctx, []*op{c}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got := readAll(t, s, c.id); !bytes.Equal(got, body(3)) {
		t.Errorf("content in the new segment: %d octets", len(got))
	}
}

// closingReader calls onEOF (once) when r ends, before reporting it.
type closingReader struct {
	r     io.Reader
	onEOF func()
	done  bool
}

func (c *closingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF && !c.done {
		c.done = true
		c.onEOF()
	}
	return n, err
}

// The store closed while a session streams its content: the Add fails
// (the client is told to try again); it does not panic.
func TestAddAcrossClose(t *testing.T) {
	segmentsFrom(t, 1000, segmentMax)
	streamFirst = 64 << 10 // the content fits its first extent
	ctx := context.Background()
	for i := range 20 {
		dir := t.TempDir()
		s := openDir(t, dir)
		r := &closingReader{r: bytes.NewReader(body(i)), onEOF: func() { s.Close() }}
		if _, err := s.Add(ctx, mail.NewID(), []byte("m"), r); err == nil {
			t.Errorf("round %d: Add succeeded on a closed store", i)
		}
		// What it wrote is nobody's: gone at the next Open.
		s = openDir(t, dir)
		if files := segmentFiles(t, dir); len(files) != 1 {
			t.Errorf("round %d: segments after reopening: %v, want the new active one", i, files)
		}
		s.Close()
	}
}

// Body after Close fails, and leaves no file open.
func TestBodyAfterClose(t *testing.T) {
	segmentsFrom(t, 1000, segmentMax)
	s := openDir(t, t.TempDir())
	id := mail.NewID()
	addContent(t, s, id, body(1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Body(context.Background(), id); err == nil {
		r.Close()
		t.Errorf("Body of %s succeeded after Close", id)
	}
	if n := len(s.seg.rd); n != 0 {
		t.Errorf("after Close, %d segment files open for reading", n)
	}
}

// Space is given back only from the end of the active segment: an
// extent followed by another keeps its size, and the next reservation
// overlaps neither.
func TestExtentsDoNotOverlap(t *testing.T) {
	segmentsFrom(t, 1000, segmentMax)
	s := open(t)
	g := s.seg
	a, _ := g.reserve(4096)
	b, _ := g.reserve(4096)
	g.trim(&a, 100) // b follows: nothing given back
	c, _ := g.reserve(4096)
	g.trim(&c, 100) // the last: its tail is given back
	d, _ := g.reserve(4096)
	ext := []extent{a, b, c, d}
	for i, x := range ext {
		for _, y := range ext[i+1:] {
			if x.seg == y.seg && x.off < y.off+y.size && y.off < x.off+x.size {
				t.Errorf("extents [%d,%d) and [%d,%d) overlap", x.off, x.off+x.size, y.off, y.off+y.size)
			}
		}
	}
	if a.size != 4096 || d.off != c.off+100 {
		t.Errorf("a keeps %d (want 4096); d at %d (want right after c's 100 at %d)", a.size, d.off, c.off)
	}
	for _, x := range ext {
		g.release(x)
	}
}

// Deliveries reading from many segments keep only a few open.
func TestReadFilesBounded(t *testing.T) {
	segmentsFrom(t, 1000, 8192) // a segment per content
	s := open(t)
	var ids []mail.ID
	for i := range maxReadFiles + 8 {
		id := mail.NewID()
		addContent(t, s, id, body(i))
		ids = append(ids, id)
	}
	for i, id := range ids {
		if got := readAll(t, s, id); !bytes.Equal(got, body(i)) {
			t.Fatalf("content %d: %d octets", i, len(got))
		}
	}
	s.seg.mu.Lock()
	n := len(s.seg.rd)
	s.seg.mu.Unlock()
	if n > maxReadFiles {
		t.Errorf("%d segment files open for reading, want at most %d", n, maxReadFiles)
	}
}

// While a rotation waits for the next segment (preparing one is 64 MiB
// of zeros and an fsync), the writer commits what was written already
// and deliveries read: only reservations wait.
func TestRotationWaitsAlone(t *testing.T) {
	segmentsFrom(t, 1000, 3*8192)
	s := open(t)
	ctx := context.Background()
	kept := mail.NewID()
	addContent(t, s, kept, body(0)) // the active segment is in use: the next is being prepared
	pending := streamOp(t, s, body(1))
	release := make(chan struct{})
	old := handOver
	handOver = func(next chan *os.File) *os.File {
		<-release
		return old(next)
	}
	t.Cleanup(func() { handOver = old })
	// This one does not fit: it waits for the next segment.
	// Not streamOp: its Fatal must not run on this goroutine.
	type streamed struct {
		o   *op
		err error
	}
	rotated := make(chan streamed, 1)
	go func() {
		b := append(body(2), body(3)...)
		head := b[:min(len(b), segmentMin+1)]
		var buf []byte
		o, err := s.stream(mail.NewID(), []byte("m"), slices.Clone(head), bytes.NewReader(b[len(head):]), &buf)
		rotated <- streamed{o, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("no rotation waiting without the segments' lock")
		}
		if !s.seg.mu.TryLock() {
			continue
		}
		waiting := s.seg.rotating
		s.seg.mu.Unlock()
		if waiting {
			break
		}
	}
	done := make(chan error, 1)
	go func() {
		errs := s.commit(ctx, []*op{pending})
		if errs[0] == nil {
			_, err := s.Body(ctx, kept)
			errs[0] = err
		}
		done <- errs[0]
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a commit and a read waited for the rotation")
	}
	close(release)
	r := <-rotated
	if r.err != nil {
		t.Fatal(r.err)
	}
	o := r.o
	if o.ext.seg.no == pending.ext.seg.no {
		t.Errorf("the content that did not fit went into segment %d, the full one", o.ext.seg.no)
	}
	if errs := s.commit(ctx, []*op{o}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got := readAll(t, s, o.id); !bytes.Equal(got, append(body(2), body(3)...)) {
		t.Errorf("content after the rotation: %d octets", len(got))
	}
}
