package sqlite

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/safeio"
)

// Message content from segmentMin up, while other sessions are adding
// too, is written by its session straight into a segment file as it
// arrives: space in the active segment is reserved for it (an extent),
// and the writer only fsyncs the segment before the content's row
// commits. The session holds no more than a chunk of it in memory, and
// a hundred sessions write in parallel where the writer would copy each
// content twice more. Stored in the database itself, a 100 KB content
// was 25 pages, each written to the WAL with two system calls and then
// again into the database at the checkpoint. Smaller content, or a lone
// one, stays in the database: there it costs less than a second fsync.
// A segment file is removed, or kept to be used again, once nothing in
// it is referred to; the few contents left in an old one are moved out
// (relocate.go) so that it can be.

// segmentMin is the smallest content put in a segment, segmentAdders
// the fewest Adds in progress for it to go there (variables for tests).
var segmentMin, segmentAdders = 32 << 10, 2

// segmentMax is the size at which a new segment is started (a variable
// for tests).
var segmentMax int64 = 64 << 20

// segmentFlush is the size of the zeros written at a time to prepare a
// segment.
const segmentFlush = 1 << 20

// maxFree is how many dead segments are kept to be used again.
const maxFree = 2

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// syncFile makes a segment's data durable, syncDir a directory's entries
// (variables for tests, which record what was synced).
var syncFile, syncDir = datasync, safeio.SyncDir

// segments are the segment files. Sessions reserve space in the active
// one and write their contents there; the writer syncs and commits
// them and learns which segments are dead. mu guards it all. Contents
// are written and read outside it; under it files are only opened,
// closed and removed, and rotate waits for the next segment (prepared
// in the background since the active one took its first content).
type segments struct {
	dir string

	mu         sync.Mutex
	ready      *sync.Cond // signalled when a rotation ends
	rotating   bool
	closed     bool
	active     *segment
	activeNo   int64
	activeSize int64 // reserved so far

	// next is the segment after the active one, being written full of
	// zeros in the background: an fsync after writing into allocated
	// space commits no file system metadata, and costs less.
	next chan *os.File

	// open are the active segment and those still written into.
	open  map[int64]*segment
	live  map[int64]int        // contents referred to, by segment
	bytes map[int64]int64      // and their octets
	at    map[mail.ID]location // where each content referred to is
	// sealed is when each segment still referred to stopped being
	// written into (for those found at Open, when it was opened): its
	// contents are moved out once few are left and it has been sealed
	// for relocateAfter.
	sealed map[int64]time.Time
	// rd are files open for reading contents, by segment: a delivery
	// finds its content without asking the database or opening a file.
	rd map[int64]*readFile
	// dead are segments nothing may refer to, removed after the next
	// durable commit: a lazy delete lost in a crash brings its row back,
	// and the row must still find its content. Candidates only:
	// removeDead looks at live and refs again.
	dead []int64
	// free are dead segments whose deletes are durable, kept to become
	// a next segment: renaming one costs a directory fsync where a new
	// one is 64 MiB of zeros written, as many bytes again as the
	// contents it will hold.
	free []int64
}

// segment is an open segment file. It stays open while contents are
// being written into it, even after it stopped being the active one.
type segment struct {
	no   int64
	f    *os.File
	refs int // extents given out and neither committed nor given up
	// failed: an fdatasync of it failed. What was written before may
	// be lost though a later fdatasync succeeds (Linux reports a failed
	// writeback once, and forgets the pages), so nothing written into
	// it is committed any more.
	failed bool
}

// location is where a committed content is, and its checksum.
type location struct {
	seg, off, size int64
	crc            uint32
}

// readFile is a segment open for reading, shared by deliveries.
type readFile struct {
	f     *os.File
	users int
	drop  bool // closed when its last user is done
}

// maxReadFiles bounds the segments kept open for reading: under a
// backlog, contents are spread over many segments.
const maxReadFiles = 16

// extent is the space reserved in a segment for one content.
type extent struct {
	seg       *segment
	off, size int64
}

func (g *segments) path(no int64) string { return segmentPath(g.dir, no) }

func segmentPath(dir string, no int64) string {
	return filepath.Join(dir, fmt.Sprintf("%016d.seg", no))
}

// segmentNo parses a segment file name.
func segmentNo(name string) (int64, bool) {
	n, ok := strings.CutSuffix(name, ".seg")
	if !ok {
		return 0, false
	}
	no, err := strconv.ParseInt(n, 10, 64)
	return no, err == nil
}

// openSegments removes the segments that live does not mention (nothing
// refers to them) and starts a new one after the highest.
func openSegments(dir string, at map[mail.ID]location) (*segments, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue store: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("queue store: %w", err)
	}
	live, bytes, sealed := map[int64]int{}, map[int64]int64{}, map[int64]time.Time{}
	now := time.Now()
	for _, l := range at {
		live[l.seg]++
		bytes[l.seg] += l.size
		sealed[l.seg] = now
	}
	g := &segments{dir: dir, open: map[int64]*segment{}, live: live, bytes: bytes, at: at,
		sealed: sealed, rd: map[int64]*readFile{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("queue store: %w", err)
	}
	for _, e := range entries {
		no, ok := segmentNo(e.Name())
		if !ok {
			continue
		}
		g.activeNo = max(g.activeNo, no)
		if live[no] == 0 {
			os.Remove(g.path(no))
		}
	}
	for no := range live {
		g.activeNo = max(g.activeNo, no)
	}
	g.ready = sync.NewCond(&g.mu)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g, g.rotate()
}

// rotate (mu held) starts a new active segment: the one prepared in the
// background if there is one, else a new empty file (its name made
// durable). The old one is closed, and becomes a dead candidate, once
// no content is being written into it. It waits for the new file
// without mu: the writer settling a batch and deliveries reading go on;
// other reservations wait on ready.
func (g *segments) rotate() error {
	if old := g.active; old != nil {
		g.active = nil
		if old.refs == 0 {
			g.retire(old)
		}
	}
	next, no := g.next, g.activeNo+1
	g.next, g.rotating = nil, true
	g.mu.Unlock()
	f, err := nextSegment(next, g.path(no))
	g.mu.Lock()
	g.rotating = false
	g.ready.Broadcast()
	switch {
	case err != nil:
		return err
	case g.closed:
		f.Close()
		os.Remove(f.Name())
		return errClosed
	}
	g.activeNo = no
	g.active, g.activeSize = &segment{no: no, f: f}, 0
	g.open[no] = g.active
	return nil
}

// nextSegment takes the segment prepared in the background, or if
// there is none (or preparing failed) creates an empty one at path.
func nextSegment(next chan *os.File, path string) (*os.File, error) {
	if next != nil {
		if f := handOver(next); f != nil {
			return f, nil
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("queue store: new content segment: %w", err)
	}
	if err := safeio.SyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("queue store: new content segment: %w", err)
	}
	return f, nil
}

// handOver receives the prepared segment (a variable for tests, which
// make it slow).
var handOver = func(next chan *os.File) *os.File { return <-next }

// retire (mu held) closes a segment that is neither active nor written
// into. Contents committed in it keep it alive; removeDead checks.
func (g *segments) retire(sg *segment) {
	sg.f.Close()
	delete(g.open, sg.no)
	g.sealed[sg.no] = time.Now()
	g.dead = append(g.dead, sg.no)
}

// prepare writes a segment of size zeros and fsyncs it and its
// directory, then hands it over; nil if that failed (the writer then
// starts an empty file).
func prepare(path string, size int64, next chan<- *os.File) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		next <- nil
		return
	}
	err = writeZeros(f, 0, size)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = safeio.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		f = nil
	}
	next <- f
}

// recycle renames the free segment from to path, to be written over,
// and hands it over once the rename is durable: contents committed in
// it are found by its new number, and would be lost with the rename. A
// segment smaller than size (the empty file started when preparing
// failed) is removed and a new one prepared instead. What from held is
// stale: rows refer to content by offset and checksum, and none refers
// to from any more. On Windows a delivery still reading from holds it
// open (closeReader closes it after) and the rename waits for it.
func recycle(from, path string, size int64, next chan<- *os.File) {
	if st, err := os.Stat(from); err != nil || st.Size() < size {
		os.Remove(from)
		prepare(path, size, next)
		return
	}
	if err := safeio.Rename(from, path); err != nil {
		// The rename may have been done and not synced.
		safeio.Remove(from)
		safeio.Remove(path)
		prepare(path, size, next)
		return
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		safeio.Remove(path)
		prepare(path, size, next)
		return
	}
	next <- f
}

// reserve gives size octets at the end of the active segment to one
// content, starting a new segment when they do not fit.
func (g *segments) reserve(size int64) (extent, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		switch {
		case g.closed:
			return extent{}, errClosed
		case g.rotating:
			g.ready.Wait()
		case g.active == nil || g.activeSize > 0 && g.activeSize+size > segmentMax:
			if err := g.rotate(); err != nil {
				return extent{}, err
			}
		default:
			return g.reserveActive(size), nil
		}
	}
}

// reserveActive (mu held) reserves size octets at the end of the active
// segment, and has the next one prepared once this one is in use.
func (g *segments) reserveActive(size int64) extent {
	if g.next == nil {
		// The active segment is in use: prepare the one after it. A
		// store whose contents all stay in the database writes none.
		g.next = make(chan *os.File, 1)
		if n := len(g.free); n > 0 {
			from := g.path(g.free[n-1])
			g.free = g.free[:n-1]
			go recycle(from, g.path(g.activeNo+1), segmentMax, g.next)
		} else {
			go prepare(g.path(g.activeNo+1), segmentMax, g.next)
		}
	}
	e := extent{seg: g.active, off: g.activeSize, size: size}
	g.activeSize += size
	g.active.refs++
	return e
}

// markFailed marks sg as failed to sync, and starts a new active segment
// at the next reserve.
func (g *segments) markFailed(sg *segment) {
	g.mu.Lock()
	defer g.mu.Unlock()
	sg.failed = true
	if g.active == sg {
		g.active = nil // retired by its last unref: refs are held
	}
}

// isFailed reports whether sg failed to sync.
func (g *segments) isFailed(sg *segment) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return sg.failed
}

// extend grows e to size in place if nothing was reserved after it.
func (g *segments) extend(e *extent, size int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.seg != g.active || e.off+e.size != g.activeSize || e.off+size > max(segmentMax, e.size) {
		return false
	}
	g.activeSize, e.size = e.off+size, size
	return true
}

// trim gives back what e does not use, if nothing was reserved after it.
func (g *segments) trim(e *extent, used int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.seg == g.active && e.off+e.size == g.activeSize {
		g.activeSize, e.size = e.off+used, used
	}
}

// release gives up an extent whose content will not be committed; its
// space stays unused.
func (g *segments) release(e extent) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unref(e.seg)
}

// unref (mu held) drops a reference to sg, retiring it if it was the
// last one to a segment no longer active.
func (g *segments) unref(sg *segment) {
	if sg.refs--; sg.refs == 0 && sg != g.active {
		g.retire(sg)
	}
}

// committed records that id's content, at l in e, is referred to by a
// committed row.
func (g *segments) committed(id mail.ID, e extent, l location) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.live[l.seg]++
	g.bytes[l.seg] += l.size
	g.at[id] = l
	g.unref(e.seg)
}

// moved records that id's content, copied from from to to (in e), is
// referred to there by a committed row, and no more where it was.
func (g *segments) moved(id mail.ID, e extent, from, to location) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.live[to.seg]++
	g.bytes[to.seg] += to.size
	g.at[id] = to
	g.unref(e.seg)
	g.forget(from)
}

// read reads id's content into dst's space, if it is in a segment.
func (g *segments) read(id mail.ID, dst []byte) ([]byte, bool, error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return dst, true, errClosed
	}
	l, ok := g.at[id]
	if !ok {
		g.mu.Unlock()
		return dst, false, nil
	}
	r := g.rd[l.seg]
	if r == nil {
		f, err := os.Open(g.path(l.seg))
		if err != nil {
			g.mu.Unlock()
			return dst, true, err
		}
		for no, r := range g.rd {
			if len(g.rd) < maxReadFiles {
				break
			}
			if r.users == 0 {
				g.closeReader(no)
			}
		}
		r = &readFile{f: f}
		g.rd[l.seg] = r
	}
	r.users++
	g.mu.Unlock()
	data, err := readAt(r.f, l, dst)
	g.mu.Lock()
	if r.users--; r.users == 0 && r.drop {
		r.f.Close()
	}
	g.mu.Unlock()
	return data, true, err
}

// closeReader (mu held) closes segment no's read file, now or when its
// last reader is done.
func (g *segments) closeReader(no int64) {
	r := g.rd[no]
	if r == nil {
		return
	}
	delete(g.rd, no)
	r.drop = true
	if r.users == 0 {
		r.f.Close()
	}
}

// deleted records that id's content is no longer referred to.
func (g *segments) deleted(id mail.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.at[id]
	if !ok {
		return
	}
	delete(g.at, id)
	g.forget(l)
}

// forget (mu held) takes a content at l off its segment's count, which
// becomes a dead candidate with its last one.
func (g *segments) forget(l location) {
	no := l.seg
	if g.live[no]--; g.live[no] <= 0 {
		delete(g.live, no)
		delete(g.bytes, no)
		g.dead = append(g.dead, no)
		return
	}
	g.bytes[no] -= l.size
}

// removeDead keeps up to maxFree dead segments to be used again and
// removes the others; called after a durable commit, when live counts
// every row there is. A candidate referred to again, or still being
// written into, is dropped: deleted or unref names it again when its
// last content goes. One being read from waits for the next call: its
// contents may have just moved (relocate), and a reader that looked
// them up before must find them there, not written over by a reuse.
// One still open by a reader otherwise (Windows refuses) is left for
// the next Open.
func (g *segments) removeDead() {
	g.mu.Lock()
	defer g.mu.Unlock()
	busy := g.dead[:0]
	for _, no := range g.dead {
		if g.live[no] > 0 || g.open[no] != nil || slices.Contains(g.free, no) {
			continue
		}
		if r := g.rd[no]; r != nil && r.users > 0 {
			busy = append(busy, no)
			continue
		}
		g.closeReader(no)
		delete(g.sealed, no)
		if len(g.free) < maxFree {
			g.free = append(g.free, no)
			continue
		}
		os.Remove(g.path(no))
	}
	g.dead = busy
}

// dropFree removes the free segments, at Close.
func (g *segments) dropFree() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, no := range g.free {
		os.Remove(g.path(no))
	}
	g.free = nil
}

// close stops reservations, removes the prepared segment and retires
// the active one (removeDead then takes it if nothing refers to it).
func (g *segments) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for no := range g.rd {
		g.closeReader(no)
	}
	if g.next != nil {
		if f := <-g.next; f != nil {
			f.Close()
			os.Remove(f.Name())
		}
		g.next = nil
	}
	if old := g.active; old != nil {
		g.active = nil
		if old.refs == 0 {
			g.retire(old)
		}
	}
}

// readSegment reads the content at l of a segment in dir into dst's
// space and checks it against its checksum.
func readSegment(dir string, l location, dst []byte) ([]byte, error) {
	f, err := os.Open(segmentPath(dir, l.seg))
	if err != nil {
		return dst[:0], err
	}
	defer f.Close()
	return readAt(f, l, dst)
}

// readAt reads the content at l from f, a segment, into dst's space (a
// variable for tests, which hold a read halfway).
var readAt = func(f *os.File, l location, dst []byte) ([]byte, error) {
	data := slices.Grow(dst[:0], int(l.size))[:l.size]
	if _, err := f.ReadAt(data, l.off); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return data[:0], err
	}
	if crc32.Checksum(data, castagnoli) != l.crc {
		return data[:0], fmt.Errorf("content at %d in %s does not match its checksum", l.off, f.Name())
	}
	return data, nil
}
