// Package sqlite is the embedded queue store: one SQLite database in WAL
// mode (modernc.org/sqlite, pure Go) under the data directory, written by a
// single goroutine that commits whatever is waiting in one transaction —
// group commit: many sessions share each fsync. The database holds the
// messages' metadata and their content: under 32 KiB in the database,
// up to 1 MiB in the database or, while sessions add in parallel,
// written by the session into segment files (segments.go), larger in a
// file of its own; a file is fsynced before the transaction that refers
// to it commits. The contents left in old, mostly emptied segments are
// moved to the active one (relocate.go), so that the disk holds about
// the queue rather than every segment a waiting message keeps.
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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/safeio"
)

// inlineMax is the largest content kept inside the database; above it the
// content is streamed to a file, so memory per session stays bounded.
const inlineMax = 1 << 20

const schema = `
CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, meta BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bodies (id TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB, in_file INTEGER NOT NULL DEFAULT 0);
`

// addedColumns are added to a store made before they were: seg, off and
// crc before contents went to segments (its rows with data keep it
// there); messages.size before a record carried its content's size, so
// that a start need not look up every content (Load reads the older
// rows' size from bodies).
var addedColumns = []struct{ table, column string }{
	{"bodies", "seg INTEGER"}, {"bodies", "off INTEGER"}, {"bodies", "crc INTEGER"},
	{"messages", "size INTEGER"},
}

// Store is a queue.Store in one SQLite file.
type Store struct {
	dir     string
	bodyDir string
	segDir  string
	db      *sql.DB // readers
	w       *sql.Conn
	ops     chan *op
	done    chan struct{}
	// Content buffers, pooled by size: small ones (up to segmentMin)
	// for a content's head and for small contents; whole ones for a
	// larger content read for delivery or added alone. Apart, because a
	// session given a whole one for its head holds it through its
	// message: a hundred sessions, megabytes.
	small, whole pool
	closed       chan struct{}
	closing      sync.RWMutex // held to send on ops, taken to close it
	once         sync.Once

	onCommit atomic.Pointer[func(time.Duration)]

	// relocating serialises the passes that move contents out of sparse
	// segments; relocated is closed when their goroutine has stopped.
	relocating sync.Mutex
	relocated  chan struct{}

	// Writer goroutine only: prepared statements and the connection's
	// current synchronous setting.
	stmts  map[string]*sql.Stmt
	synced bool

	body *sql.Stmt // sqlBody on the readers, prepared once

	seg *segments
	// adding counts the Adds in progress: with more than one, content
	// goes to segments as it arrives.
	adding atomic.Int32
	cache  cache // content just added, for its delivery
	// deleting are the ids whose lazy delete is not committed yet: gone
	// for readers already.
	deleting sync.Map

	orphans []string // see Orphans

	// files are the ids whose content is in a file of its own (bigger
	// than inlineMax), so a delete knows without a stat.
	files sync.Map
}

// ObserveCommits makes f see how long each group commit (write and fsync)
// took, for the store latency metric.
func (s *Store) ObserveCommits(f func(time.Duration)) { s.onCommit.Store(&f) }

type opKind int

const (
	opAdd opKind = iota
	opUpdate
	opDelete
	opSync // nothing: commits the lazy deletes before it (not durable: it writes nothing)
	opMove // points a content's row at its copy, if the row still refers to where it was copied from
)

// op is one write waiting for the next group commit.
type op struct {
	kind   opKind
	id     mail.ID
	meta   []byte
	body   []byte // content read into memory, for the database
	size   int64
	inFile bool
	// Where the content was written, if in a segment, and its checksum;
	// the extent stays reserved until the writer commits the row or gives
	// it up.
	ext extent
	crc uint32
	// from is where an opMove's content was copied from.
	from location
	// lazy marks a delete whose commit need not wait for the disk: if a
	// crash loses it, the message is delivered once more (at least once),
	// never lost. Deletes of contents kept in files stay durable, so the
	// file is never removed under a row that comes back.
	lazy bool
	err  chan error
}

// segmented reports whether o's content was written into a segment.
func (o *op) segmented() bool { return o.ext.seg != nil }

// location is where o's content is in its segment.
func (o *op) location() location {
	return location{seg: o.ext.seg.no, off: o.ext.off, size: o.size, crc: o.crc}
}

// maxReaders bounds the database connections used to read (the writer
// has one more of its own).
const maxReaders = 4

// Options are a store's settings; the zero value suits a short-lived
// store (a test's).
type Options struct {
	// PresizeLog writes the write-ahead log full of zeros at Open (see
	// presizeLog): ~72 MB, for commits that need one flush each.
	PresizeLog bool
}

// Open opens (or creates) the store in dir.
func Open(dir string, o Options) (*Store, error) {
	bodyDir := filepath.Join(dir, "bodies")
	_, err := os.Stat(dir)
	created := errors.Is(err, os.ErrNotExist)
	if err := os.MkdirAll(bodyDir, 0o750); err != nil {
		return nil, fmt.Errorf("queue store: %w", err)
	}
	// A new store's directory must keep its name in its parent: it holds
	// every message. (openSegments syncs the entries in it.)
	if created {
		if err := syncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
			return nil, fmt.Errorf("queue store: %w", err)
		}
	}
	// Commit with fdatasync, as SQLite's own Linux builds do: fsync also
	// pushes the log's new mtime through the file system's journal, a
	// second write and flush. The data and the size are synced either
	// way. modernc.org/sqlite keeps SQLite's source default, fsync,
	// unless told; where it cannot (Windows, macOS) fsync stays.
	sqlite.Fdatasync(true)
	ownerOnly(filepath.Join(dir, "queue.db"))
	dsn := "file:" + uriPath.Replace(filepath.Join(dir, "queue.db")) +
		"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(" + strconv.FormatInt(walCheckpointPages, 10) +
		")&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("queue store: %w", err)
	}
	ctx := context.Background()
	w, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, openError(dir, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		db.Close()
		return nil, openError(dir, err)
	}
	// SQLite opens a file it may not write read-only, without a word;
	// Sluice would then run but record nothing, not even deliveries.
	if err := probeWrite(ctx, w); err != nil {
		w.Close()
		db.Close()
		return nil, openError(dir, err)
	}
	s := &Store{
		dir: dir, bodyDir: bodyDir, segDir: filepath.Join(dir, "segments"), db: db, w: w,
		ops: make(chan *op, 4096), done: make(chan struct{}), closed: make(chan struct{}),
		relocated: make(chan struct{}),
	}
	s.small.size, s.whole.size = 16<<10, 128<<10
	s.cache.release = func(bp *[]byte) { s.putBuf(bp, *bp) }
	// Readers share few connections: each has its own page cache, and
	// contents are mostly served from memory or segment files.
	db.SetMaxOpenConns(1 + maxReaders)
	db.SetMaxIdleConns(1 + maxReaders)
	s.stmts = map[string]*sql.Stmt{}
	for _, q := range writerStatements {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			s.closeDB()
			return nil, fmt.Errorf("queue store %s: %w", dir, err)
		}
		s.stmts[q] = st
	}
	// FULL whatever the DSN did, and checked: a commit at NORMAL is not
	// durable, and nothing else would show it (kill -9 keeps the page
	// cache; only a power loss finds out).
	if err := s.setSynchronous(ctx, true); err != nil {
		s.closeDB()
		return nil, err
	}
	var level int
	if err := w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level); err != nil || level != 2 {
		s.closeDB()
		return nil, fmt.Errorf("queue store %s: synchronous is %d, not FULL (%v)", dir, level, err)
	}
	if s.body, err = db.PrepareContext(ctx, sqlBody); err != nil {
		s.closeDB()
		return nil, fmt.Errorf("queue store %s: %w", dir, err)
	}
	if err := s.removeOrphans(ctx); err != nil {
		s.closeDB()
		return nil, err
	}
	if err := s.openSegments(ctx); err != nil {
		s.closeDB()
		return nil, err
	}
	if o.PresizeLog {
		s.presizeLog(ctx)
	}
	go s.writer()
	go s.relocator()
	return s, nil
}

// ownerOnly creates the database file 0640, as Sluice writes every other
// file, or takes group write and all other access from one made before:
// SQLite would create it 0644, and it holds every envelope. SQLite gives
// its -wal and -shm files the database file's mode. Best effort: a
// database Sluice may not change is Open's to report, with its fix.
func ownerOnly(path string) {
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640); err == nil {
		f.Close()
		return
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o027 != 0 {
		os.Chmod(path, st.Mode().Perm()&^0o027)
	}
}

// uriPath escapes what SQLite would read as URI syntax in the path of a
// "file:" DSN (RFC 3986 §2.1): '?' and '#' would end the path there, and
// "%41" would be read as "A", putting the database in another directory.
var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// Add implements queue.Store.
func (s *Store) Add(ctx context.Context, id mail.ID, meta []byte, body io.Reader) (int64, error) {
	s.adding.Add(1)
	defer s.adding.Add(-1)
	bp := s.small.get()
	limit := segmentMin - 1
	data, err := readUpTo((*bp)[:0], body, limit)
	// Past segmentMin, the content goes to a segment as soon as another
	// Add is in progress: sessions come in waves (all answered by one
	// commit), and the first may be alone only for a moment.
	for err == nil && len(data) > limit && limit < inlineMax {
		if int(s.adding.Load()) >= segmentAdders {
			o, err := s.stream(id, meta, data, body, bp)
			s.putBuf(bp, *bp)
			if err != nil {
				return 0, err
			}
			return o.size, s.addOp(ctx, o)
		}
		if limit == segmentMin-1 {
			wp := s.whole.get()
			*wp = append((*wp)[:0], data...)
			s.small.put(bp, data)
			bp, data = wp, *wp
		}
		limit = min(2*limit+1, inlineMax)
		data, err = readUpTo(data, body, limit)
	}
	n := int64(len(data))
	if err != nil {
		s.putBuf(bp, data)
		return n, err
	}
	o := &op{kind: opAdd, id: id, meta: meta}
	if n > inlineMax {
		// Too big to hold: what was read and the rest go to a file of
		// their own, durable before the row that names it.
		total, err := safeio.WriteFrom(s.bodyPath(id), io.MultiReader(bytes.NewReader(data), body), 0o640)
		s.putBuf(bp, data)
		if err != nil {
			os.Remove(s.bodyPath(id))
			return total, mapErr(err)
		}
		n, o.inFile = total, true
		s.files.Store(id, true)
	} else {
		o.body = data
	}
	o.size = n
	if err := s.addOp(ctx, o); err != nil {
		// Not back to the pool: the writer may still hold the buffer
		// when the caller gave up waiting.
		return n, err
	}
	if !o.inFile {
		*bp = data
		if !s.cache.keep(id, bp) {
			s.putBuf(bp, data)
		}
	}
	return n, nil
}

// addOp hands an add to the writer and waits for its commit. What an add
// the writer never got, or failed, had written is given up; one the
// caller stopped waiting for is the writer's to commit, and a file of its
// own left by a failure then goes at the next Open.
func (s *Store) addOp(ctx context.Context, o *op) error {
	o.err = make(chan error, 1)
	if err := s.enqueue(ctx, o); err != nil {
		if o.segmented() {
			s.seg.release(o.ext)
		}
		s.dropFile(o)
		return err
	}
	select {
	case err := <-o.err:
		if err != nil {
			s.dropFile(o)
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dropFile removes the file of an add that was not committed.
func (s *Store) dropFile(o *op) {
	if o.inFile {
		s.files.Delete(o.id)
		os.Remove(s.bodyPath(o.id))
	}
}

// putBuf returns a content buffer to the pool of its size.
func (s *Store) putBuf(bp *[]byte, data []byte) {
	if cap(data) <= segmentMin {
		s.small.put(bp, data)
	} else {
		s.whole.put(bp, data)
	}
}

// pool keeps content buffers for reuse.
type pool struct {
	p    sync.Pool
	size int // of a new buffer
}

func (p *pool) get() *[]byte {
	if bp, ok := p.p.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, p.size)
	return &b
}

// put returns a buffer holding data, unless it grew so large that
// keeping it would hold memory for a rare message.
func (p *pool) put(bp *[]byte, data []byte) {
	if cap(data) <= maxPooled {
		*bp = data[:0]
		p.p.Put(bp)
	}
}

// maxPooled is the largest content buffer kept for reuse.
const maxPooled = 256 << 10

// readUpTo appends r to dst until EOF or until more than limit octets
// are in it. It doubles dst as it fills, but never past limit+1: a head
// read to decide whether a content goes to a segment takes exactly
// segmentMin, which is then the chunk it is streamed through.
func readUpTo(dst []byte, r io.Reader, limit int) ([]byte, error) {
	for len(dst) <= limit {
		if len(dst) == cap(dst) {
			// Exactly: append and slices.Grow would round 32 KiB up to 48.
			grown := make([]byte, len(dst), len(dst)+max(1, min(cap(dst), limit+1-len(dst))))
			dst = grown[:copy(grown, dst)]
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), limit+1)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// Update implements queue.Store.
func (s *Store) Update(ctx context.Context, id mail.ID, meta []byte) error {
	return s.submit(ctx, &op{kind: opUpdate, id: id, meta: meta, err: make(chan error, 1)})
}

// Delete implements queue.Store. A delete of inline content returns
// before its commit: it is lazy (see op), so nobody needs to wait for it,
// and it rides with the next commit that must be durable.
func (s *Store) Delete(ctx context.Context, id mail.ID) error {
	s.cache.drop(id)
	_, inFile := s.files.Load(id)
	o := &op{kind: opDelete, id: id, lazy: !inFile, err: make(chan error, 1)}
	if !inFile {
		s.deleting.Store(id, true)
		if err := s.enqueue(ctx, o); err != nil {
			s.deleting.Delete(id)
			return err
		}
		return nil
	}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	s.files.Delete(id)
	// safeio waits for an antivirus or backup agent that has the file
	// open on Windows, which would refuse the remove.
	if err := safeio.Remove(s.bodyPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("queue store: remove content of %s: %w", id, err)
	}
	return nil
}

// submit hands an op to the writer and waits for its commit. The op is
// committed even if ctx ends first; the caller just stops waiting.
func (s *Store) submit(ctx context.Context, o *op) error {
	if err := s.enqueue(ctx, o); err != nil {
		return err
	}
	select {
	case err := <-o.err:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue hands an op to the writer. The read lock keeps Close from
// closing ops under a send: a session or delivery may outlive the store.
func (s *Store) enqueue(ctx context.Context, o *op) error {
	s.closing.RLock()
	defer s.closing.RUnlock()
	select {
	case <-s.closed:
		return errClosed
	default:
	}
	select {
	case s.ops <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errClosed = errors.New("queue store is closed")

const sqlBody = "SELECT data, in_file, seg, off, size, crc FROM bodies WHERE id = ?"

// Body implements queue.Store.
func (s *Store) Body(ctx context.Context, id mail.ID) (io.ReadCloser, error) {
	if r, ok := s.cache.get(id); ok {
		return r, nil
	}
	if _, ok := s.deleting.Load(id); ok {
		return nil, queue.ErrNotFound
	}
	bp := s.whole.get()
	if data, ok, err := s.seg.read(id, *bp); ok {
		if err != nil {
			s.whole.put(bp, data)
			return nil, fmt.Errorf("queue store: content of %s: %w", id, err)
		}
		return s.pooled(bp, data), nil
	}
	s.whole.put(bp, *bp)
	var data []byte
	var inFile bool
	var seg, off, crc sql.NullInt64
	var size int64
	err := s.body.QueryRowContext(ctx, string(id)).Scan(&data, &inFile, &seg, &off, &size, &crc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, queue.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("queue store: read %s: %w", id, err)
	}
	switch {
	case inFile:
		f, err := os.Open(s.bodyPath(id))
		if err != nil {
			return nil, fmt.Errorf("queue store: content of %s: %w", id, err)
		}
		// Such a file has no checksum; its size at least must be the
		// one it was accepted with, or a message cut short goes out.
		if fi, err := f.Stat(); err != nil || fi.Size() != size {
			f.Close()
			if err == nil {
				err = fmt.Errorf("%s is %d octets, %d when it was accepted: it was changed or cut short", f.Name(), fi.Size(), size)
			}
			return nil, fmt.Errorf("queue store: content of %s: %w", id, err)
		}
		return f, nil
	case seg.Valid:
		// Committed since the look in the segments' map above.
		bp := s.whole.get()
		l := location{seg: seg.Int64, off: off.Int64, size: size, crc: uint32(crc.Int64)}
		if data, err = readSegment(s.segDir, l, *bp); err != nil {
			s.whole.put(bp, data)
			return nil, fmt.Errorf("queue store: content of %s: %w", id, err)
		}
		return s.pooled(bp, data), nil
	}
	// No checksum here either (SQLite checks its pages only as far as
	// it can parse them); the size is the one it was accepted with, or
	// a message cut short would go out.
	if int64(len(data)) != size {
		return nil, fmt.Errorf("queue store: content of %s: %d octets in the database, %d when it was accepted: it was changed or cut short", id, len(data), size)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// pooledReader reads a content from one of the store's buffers, back to
// the pool on Close: under a backlog every delivery reads its content
// from a segment, and fresh buffers for each made the garbage that set
// the heap's size at a hundred connections.
type pooledReader struct {
	bytes.Reader
	s  *Store
	bp *[]byte
}

// pooled reads data, held in *bp, which goes back to the pool on Close.
func (s *Store) pooled(bp *[]byte, data []byte) io.ReadCloser {
	*bp = data
	r := &pooledReader{s: s, bp: bp}
	r.Reset(data)
	return r
}

func (r *pooledReader) Close() error {
	if r.bp != nil {
		r.Reset(nil)
		r.s.whole.put(r.bp, *r.bp)
		r.bp = nil
	}
	return nil
}

// Load implements queue.Store. Lazy deletes are committed first, so it
// sees none of the messages deleted before it. Rows are read ahead of
// fn, on another goroutine: a start with a large queue spends about as
// long in SQLite as in decoding the records, and the two overlap.
func (s *Store) Load(ctx context.Context, fn func(id mail.ID, meta []byte, size int64) error) error {
	if err := s.submit(ctx, &op{kind: opSync, err: make(chan error, 1)}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []loaded, 4)
	var scanErr error
	go func() {
		defer close(batches)
		scanErr = s.scan(ctx, batches)
	}()
	var err error
	for b := range batches {
		for i := 0; i < len(b) && err == nil; i++ {
			if b[i].size > inlineMax {
				s.files.Store(b[i].id, true)
			}
			err = fn(b[i].id, b[i].meta, b[i].size)
		}
		if err != nil {
			cancel()
			for range batches { // let the scan see the cancel and end
			}
			return err
		}
	}
	return scanErr
}

// loaded is one message row as Load hands it to its callback.
type loaded struct {
	id   mail.ID
	meta []byte
	size int64
}

// loadBatch is how many rows the scan hands over at a time.
const loadBatch = 256

// scan reads every message row for Load, in batches. A row written
// before messages.size existed takes its size from its content's row.
func (s *Store) scan(ctx context.Context, out chan<- []loaded) error {
	rows, err := s.db.QueryContext(ctx, `SELECT m.id, m.meta,
		coalesce(m.size, (SELECT b.size FROM bodies b WHERE b.id = m.id), 0)
		FROM messages m ORDER BY m.id`)
	if err != nil {
		return fmt.Errorf("queue store: load: %w", err)
	}
	defer rows.Close()
	b := make([]loaded, 0, loadBatch)
	send := func() error {
		select {
		case out <- b:
			b = make([]loaded, 0, loadBatch)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for rows.Next() {
		var id string
		var l loaded
		if err := rows.Scan(&id, &l.meta, &l.size); err != nil {
			return fmt.Errorf("queue store: load: %w", err)
		}
		l.id = mail.ID(id)
		if b = append(b, l); len(b) == loadBatch {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("queue store: load: %w", err)
	}
	if len(b) == 0 {
		return nil
	}
	return send()
}

// Close implements queue.Store: pending writes are committed first.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closing.Lock()
		close(s.closed)
		close(s.ops)
		s.closing.Unlock()
	})
	<-s.done
	<-s.relocated
	s.seg.close()
	err := s.closeDB()
	// Closing the last connection checkpointed the WAL and deleted it:
	// every delete is durable now. Another connection (an operator's
	// sqlite3) keeps it, unsynced since the last lazy deletes: synced
	// here before the segments they freed go, or those stay for the next
	// Open to judge.
	if serr := s.syncLeftLog(); serr != nil {
		return errors.Join(err, serr)
	}
	s.seg.removeDead()
	s.seg.dropFree()
	return err
}

// syncLeftLog makes the WAL durable if it outlived the store's
// connections.
func (s *Store) syncLeftLog() error {
	f, err := os.OpenFile(filepath.Join(s.dir, "queue.db-wal"), os.O_RDWR, 0)
	if err != nil {
		return nil // deleted: checkpointed and synced
	}
	defer f.Close()
	if err := syncFile(f); err != nil {
		return fmt.Errorf("queue store: sync the log another connection keeps: %w", err)
	}
	return nil
}

// closeDB closes the statements and connections; on its own only while
// the writer has not started.
func (s *Store) closeDB() error {
	for _, st := range s.stmts {
		st.Close()
	}
	if s.body != nil {
		s.body.Close()
	}
	s.w.Close()
	return s.db.Close()
}

func (s *Store) bodyPath(id mail.ID) string { return filepath.Join(s.bodyDir, string(id)) }

// Orphans are the content files Open found with no row referring to
// them and moved to the orphans directory, for the daemon to log.
func (s *Store) Orphans() []string { return s.orphans }

// removeOrphans moves content files no row refers to into dir/orphans.
// Usually an add a crash cut off between the file's fsync and the commit
// (never acknowledged, sent again by its client); but after the WAL was
// lost or cut (deleted after a kill -9, a bad restore) the file is the
// only copy of an accepted message, and removing it would destroy what
// the store could not read. Temporary files of safeio are removed.
func (s *Store) removeOrphans(ctx context.Context) error {
	entries, err := os.ReadDir(s.bodyDir)
	if err != nil {
		return fmt.Errorf("queue store: %w", err)
	}
	for _, e := range entries {
		id, err := mail.ParseID(e.Name())
		if err != nil {
			os.Remove(filepath.Join(s.bodyDir, e.Name())) // temporary files of safeio
			continue
		}
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM bodies WHERE id = ?", string(id)).Scan(&n); err != nil {
			return fmt.Errorf("queue store: %w", err)
		}
		if n == 0 {
			dst := filepath.Join(s.dir, "orphans", string(id))
			if err := safeio.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
				return fmt.Errorf("queue store: %w", err)
			}
			// The rename must not come undone (safeio.Rename syncs both
			// directories, or writes it through): a file back in bodies
			// would be moved again, but one lost would be lost.
			if err := safeio.Rename(s.bodyPath(id), dst); err != nil {
				return fmt.Errorf("queue store: keep a content file with no record: %w", err)
			}
			s.orphans = append(s.orphans, dst)
		}
	}
	return nil
}

// migrate creates the tables, or adds what an older store lacks.
func migrate(ctx context.Context, w *sql.Conn) error {
	if _, err := w.ExecContext(ctx, schema); err != nil {
		return err
	}
	has := map[string]bool{}
	for _, table := range []string{"bodies", "messages"} {
		rows, err := w.QueryContext(ctx, "SELECT name FROM pragma_table_info('"+table+"')")
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return err
			}
			has[table+"."+name] = true
		}
		rows.Close()
	}
	for _, c := range addedColumns {
		name, _, _ := strings.Cut(c.column, " ")
		if has[c.table+"."+name] {
			continue
		}
		if _, err := w.ExecContext(ctx, "ALTER TABLE "+c.table+" ADD COLUMN "+c.column); err != nil {
			return err
		}
	}
	return nil
}

// openSegments learns where each content in a segment is, and so which
// segments are still needed.
func (s *Store) openSegments(ctx context.Context) error {
	at := map[mail.ID]location{}
	rows, err := s.db.QueryContext(ctx, "SELECT id, seg, off, size, crc FROM bodies WHERE seg IS NOT NULL")
	if err != nil {
		return fmt.Errorf("queue store: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var l location
		var crc int64
		if err := rows.Scan(&id, &l.seg, &l.off, &l.size, &crc); err != nil {
			return fmt.Errorf("queue store: %w", err)
		}
		l.crc = uint32(crc)
		at[mail.ID(id)] = l
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("queue store: %w", err)
	}
	s.seg, err = openSegments(s.segDir, at)
	return err
}

// probeWrite writes to the database and takes it back: a write lock
// alone is had on a read-only file too.
func probeWrite(ctx context.Context, w *sql.Conn) error {
	var v int64
	if err := w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if _, err := w.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	_, err := w.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	if _, rerr := w.ExecContext(ctx, "ROLLBACK"); err == nil {
		err = rerr
	}
	return err
}

// openError says what an admin can do about a queue database that
// cannot be opened: it names the file, and what holds the messages.
func openError(dir string, err error) error {
	file := filepath.Join(dir, "queue.db")
	var se *sqlite.Error
	code := 0
	if errors.As(err, &se) {
		code = se.Code() & 0xff
	}
	var fix string
	switch free, ferr := safeio.FreeSpace(dir); {
	case code == sqlite3.SQLITE_READONLY:
		fix = "it is read-only (file mode, owner, chattr +i, or a read-only mount): Sluice must write it; make it and its directory writable by the user Sluice runs as"
	case code == sqlite3.SQLITE_NOTADB || code == sqlite3.SQLITE_CORRUPT:
		fix = "it is damaged or not a Sluice queue: restore it (with its -wal file) from a backup, or move " + dir +
			" aside to start with an empty queue (its bodies and segments directories hold message contents)"
	case code == sqlite3.SQLITE_FULL || ferr == nil && free < 1<<20:
		fix = "the disk under it is full: free some space and start again; nothing queued is lost"
	case code == sqlite3.SQLITE_CANTOPEN || code == sqlite3.SQLITE_PERM:
		fix = "check that " + dir + " exists and the user Sluice runs as may read and write it"
	default:
		return fmt.Errorf("queue store %s: %w", file, err)
	}
	return fmt.Errorf("queue store %s: %w; %s", file, err, fix)
}

// mapErr turns "disk full" from SQLite or the file system into ErrNoSpace.
func mapErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL || safeio.IsNoSpace(err) {
		return fmt.Errorf("%w: %v", queue.ErrNoSpace, err)
	}
	return err
}
