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

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/safeio"
)

// Message content from segmentMin up, when a group commit has at least
// segmentBatch of them, goes to segment files, appended to by the
// writer: one write and one fsync for all of them, and the database
// keeps only where each content is. Stored in the database itself, a
// 100 KB content was 25 pages, each written to the WAL with two system
// calls and then again into the database at the checkpoint. Smaller
// content, or a lone one, stays in the database: there it costs less
// than a second fsync. A segment file is removed once nothing in it is
// referred to any more.

// segmentMin is the smallest content put in a segment, segmentBatch the
// fewest in one commit (variables for tests).
var segmentMin, segmentBatch = 32 << 10, 2

// segmentMax is the size at which the writer starts a new segment (a
// variable for tests).
var segmentMax int64 = 64 << 20

// segmentFlush bounds the bytes held before they are written out.
const segmentFlush = 1 << 20

// maxFree is how many dead segments are kept to be used again.
const maxFree = 2

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// syncFile makes a segment's data durable (a variable for tests, which
// record what was synced).
var syncFile = datasync

// segments is the writer's view of the segment files. Only the writer
// goroutine (and Open and Close around it) uses it.
type segments struct {
	dir string

	active     *os.File
	activeNo   int64
	activeSize int64
	buf        []byte // appended, not yet written
	bufStart   int64  // offset of buf[0] in the active segment

	// next is the segment after the active one, being written full of
	// zeros in the background: an fsync after writing into allocated
	// space commits no file system metadata, and costs less.
	next chan *os.File

	live  map[int64]int     // contents referred to, by segment
	segOf map[mail.ID]int64 // which segment holds a content
	// dead are segments nothing may refer to, removed after the next
	// durable commit: a lazy delete lost in a crash brings its row back,
	// and the row must still find its content. Candidates only: a
	// segment rotated out in the middle of a batch has that batch's
	// contents, whose rows count only once committed, so removeDead
	// looks at live again.
	dead []int64
	// free are dead segments whose deletes are durable, kept to become
	// a next segment: renaming one costs a directory fsync where a new
	// one is 64 MiB of zeros written, as many bytes again as the
	// contents it will hold.
	free []int64
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
func openSegments(dir string, live map[int64]int, segOf map[mail.ID]int64) (*segments, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue store: %w", err)
	}
	if err := safeio.SyncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("queue store: %w", err)
	}
	g := &segments{dir: dir, live: live, segOf: segOf}
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
	return g, g.rotate()
}

// rotate starts a new active segment: the one prepared in the
// background if there is one, else a new empty file (its name made
// durable). The old one is a dead candidate: the batch being placed may
// have contents in it that live does not count yet.
func (g *segments) rotate() error {
	if g.active != nil {
		g.active.Close()
		g.dead = append(g.dead, g.activeNo)
	}
	var f *os.File
	if g.next != nil {
		f = <-g.next
		g.next = nil
	}
	if f == nil {
		var err error
		if f, err = os.OpenFile(g.path(g.activeNo+1), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640); err != nil {
			g.active = nil
			return fmt.Errorf("queue store: new content segment: %w", err)
		}
		if err := safeio.SyncDir(g.dir); err != nil {
			f.Close()
			os.Remove(f.Name())
			g.active = nil
			return fmt.Errorf("queue store: new content segment: %w", err)
		}
	}
	g.active, g.activeNo, g.activeSize = f, g.activeNo+1, 0
	g.bufStart = 0
	return nil
}

// prepare writes a segment of size zeros and fsyncs it and its
// directory, then hands it over; nil if that failed (the writer then
// starts an empty file).
func prepare(path string, size int64, next chan<- *os.File) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		next <- nil
		return
	}
	zeros := make([]byte, min(size, segmentFlush))
	for off := int64(0); off < size && err == nil; off += int64(len(zeros)) {
		_, err = f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off)
	}
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
// and hands it over once the rename is durable; a segment smaller than
// size (the empty file started when preparing failed) is removed and a
// new one prepared instead. What from held is stale: rows refer to
// content by offset and checksum, and none refers to from any more.
func recycle(from, path string, size int64, next chan<- *os.File) {
	if st, err := os.Stat(from); err != nil || st.Size() < size {
		os.Remove(from)
		prepare(path, size, next)
		return
	}
	if err := os.Rename(from, path); err != nil {
		os.Remove(from)
		prepare(path, size, next)
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		err = safeio.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.Remove(path)
		prepare(path, size, next)
		return
	}
	next <- f
}

// add places data at the end of the active segment and reports where.
// It is on disk after sync.
func (g *segments) add(data []byte) (no, off int64, err error) {
	if g.active == nil || g.activeSize >= segmentMax {
		// Contents of this batch may be in the full segment already:
		// they must be durable too before a row refers to them.
		if g.active != nil {
			if err := g.sync(); err != nil {
				return 0, 0, err
			}
		}
		if err := g.rotate(); err != nil {
			return 0, 0, err
		}
	}
	if len(g.buf) >= segmentFlush {
		if err := g.write(); err != nil {
			return 0, 0, err
		}
	}
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
	if len(g.buf) == 0 {
		g.bufStart = g.activeSize
	}
	no, off = g.activeNo, g.activeSize
	g.buf = append(g.buf, data...)
	g.activeSize += int64(len(data))
	return no, off, nil
}

// write hands what add held to the file.
func (g *segments) write() error {
	if len(g.buf) == 0 {
		return nil
	}
	_, err := g.active.WriteAt(g.buf, g.bufStart)
	g.buf = g.buf[:0]
	if cap(g.buf) > 4*segmentFlush {
		g.buf = nil // one huge batch need not stay in memory
	}
	if err != nil {
		// What follows must not land after a hole: start afresh.
		g.active.Close()
		g.active = nil
		return fmt.Errorf("queue store: write content segment: %w", err)
	}
	return nil
}

// sync makes what was added durable; nothing refers to it before.
func (g *segments) sync() error {
	if err := g.write(); err != nil {
		return err
	}
	if g.active == nil {
		return errors.New("queue store: no content segment")
	}
	if err := syncFile(g.active); err != nil {
		return fmt.Errorf("queue store: sync content segment: %w", err)
	}
	return nil
}

// abandon forgets what was added since the last sync; the space stays
// unused.
func (g *segments) abandon() { g.buf = g.buf[:0] }

// committed records that id's content in segment no is referred to.
func (g *segments) committed(id mail.ID, no int64) {
	g.live[no]++
	g.segOf[id] = no
}

// deleted records that id's content is no longer referred to.
func (g *segments) deleted(id mail.ID) {
	no, ok := g.segOf[id]
	if !ok {
		return
	}
	delete(g.segOf, id)
	if g.live[no]--; g.live[no] <= 0 {
		delete(g.live, no)
		if no != g.activeNo {
			g.dead = append(g.dead, no)
		}
	}
}

// removeDead keeps up to maxFree dead segments to be used again and
// removes the others; called after a durable commit, when live counts
// every row there is. A candidate referred to again (contents placed
// before it was rotated out) is dropped: deleted names it again when
// its last content goes. One still open by a reader (Windows refuses)
// is left for the next Open.
func (g *segments) removeDead() {
	for _, no := range g.dead {
		if g.live[no] > 0 || g.active != nil && no == g.activeNo || slices.Contains(g.free, no) {
			continue
		}
		if len(g.free) < maxFree {
			g.free = append(g.free, no)
			continue
		}
		os.Remove(g.path(no))
	}
	g.dead = g.dead[:0]
}

// dropFree removes the free segments, at Close.
func (g *segments) dropFree() {
	for _, no := range g.free {
		os.Remove(g.path(no))
	}
	g.free = nil
}

// close closes the active segment, removing it if nothing refers to it,
// and the prepared one.
func (g *segments) close() {
	if g.next != nil {
		if f := <-g.next; f != nil {
			f.Close()
			os.Remove(f.Name())
		}
		g.next = nil
	}
	if g.active == nil {
		return
	}
	g.write()
	g.active.Close()
	g.active = nil
	g.dead = append(g.dead, g.activeNo)
}

// readSegment reads size octets at off of segment no in dir into dst's
// space and checks them against sum.
func readSegment(dir string, no, off, size int64, sum uint32, dst []byte) ([]byte, error) {
	path := segmentPath(dir, no)
	f, err := os.Open(path)
	if err != nil {
		return dst[:0], err
	}
	defer f.Close()
	data := slices.Grow(dst[:0], int(size))[:size]
	if _, err := f.ReadAt(data, off); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return data[:0], err
	}
	if crc32.Checksum(data, castagnoli) != sum {
		return data[:0], fmt.Errorf("content at %d in %s does not match its checksum", off, path)
	}
	return data, nil
}
