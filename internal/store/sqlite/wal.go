package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
)

// walCheckpointPages is the size of the write-ahead log, in pages, at
// which SQLite copies it into the database and starts it over from its
// beginning.
const walCheckpointPages = 16384

// walSlackFrames are frames past walCheckpointPages: the commit that
// crosses it is written whole before the checkpoint.
const walSlackFrames = 1024

// Sizes of the log's header and of each frame's header, from SQLite's
// file format.
const walHeader, walFrameHeader = 32, 24

// The zeros written ahead of the log: the first chunk at Open, each next
// twice as big, up to the largest.
const walFirstChunk, walMaxChunk = 1 << 20, 8 << 20

// walAhead keeps zeros written ahead of SQLite's writes to the log until
// it has the size it reaches before a checkpoint starts it over. A commit
// that appends to the file makes its fdatasync commit file system
// metadata too: on the benchmark VM a fresh log's first 64 MiB (the
// first ~2,300 messages at one connection) took ~480 µs from the final
// dot to the 250, a log written over ~350 µs. SQLite deletes the log when
// the last connection closes cleanly, so every Open starts again.
// Segments are prepared the same way.
//
// The zeros go in chunks as the log reaches them, not all at Open: a
// store that sees few messages (every test's) never writes 70 MB. They
// are not synced: the next commit's fdatasync makes them durable with
// one metadata commit for the whole chunk.
//
// Zeros are not frames: a frame counts only if its salt matches the
// header's, and recovery stops at the first that does not, as it does
// at the frames of the previous round that a restarted log leaves
// behind. They are written from the file's end, or from the start of a
// frame a crash left torn there: completed with the very zeros it
// lacked, such a frame could pass its checksum, and a second crash
// would bring back a commit the first recovery had dropped. A chunk is
// written by the writer between its commits, inside an empty
// transaction holding SQLite's write lock, so no other connection (an
// operator's sqlite3, say) writes the log meanwhile; an empty
// transaction writes nothing to it. Best effort, like a segment's
// preparation: if the disk cannot take a chunk, the log is cut back and
// grows as it would have.
type walAhead struct {
	f      *os.File // nil once done
	end    int64    // where the zeros end
	target int64
	chunk  int64
	frame  int64 // a frame's size: its header and a page
}

// newWALAhead prepares to write zeros ahead of the log at path; nil if
// it cannot be found.
func newWALAhead(ctx context.Context, w *sql.Conn, path string) *walAhead {
	var pageSize int64
	if err := w.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil || pageSize <= 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil // no log yet: SQLite makes it at the first write
	}
	frame := walFrameHeader + pageSize
	return &walAhead{f: f, end: -1, chunk: walFirstChunk, frame: frame,
		target: walHeader + (walCheckpointPages+walSlackFrames)*frame}
}

// extendWAL writes the next chunk of zeros ahead of the log if SQLite
// has written past the last, under SQLite's write lock. Writer goroutine
// only (or Open, before it starts), between commits.
func (s *Store) extendWAL(ctx context.Context) {
	if _, due := s.wal.due(); !due {
		return
	}
	if err := s.run(ctx, sqlBegin); err != nil {
		return // another writer held the log past the busy timeout: after the next commit
	}
	defer s.run(ctx, sqlRollback)
	if size, due := s.wal.due(); due {
		s.wal.advance(size)
	}
}

// due reports the log's size and whether SQLite has written past the
// zeros; it lets go of the log once it has its full size.
func (a *walAhead) due() (int64, bool) {
	if a == nil || a.f == nil {
		return 0, false
	}
	fi, err := a.f.Stat()
	if err != nil {
		a.close()
		return 0, false
	}
	size := fi.Size()
	if size >= a.target {
		a.close()
		return size, false
	}
	return size, size > a.end
}

// advance writes the next chunk of zeros, from the last whole frame at
// or before size.
func (a *walAhead) advance(size int64) {
	from := int64(0) // a torn header: the log is empty
	if size >= walHeader {
		from = walHeader + (size-walHeader)/a.frame*a.frame
	}
	end := min(size+a.chunk, a.target)
	if a.target-end < a.chunk {
		// The rest too: a checkpoint may start the log over before
		// it reaches a last small chunk, and this would go on looking.
		end = a.target
	}
	if err := writeZeros(a.f, from, end); err != nil {
		a.f.Truncate(size)
		a.close()
		return
	}
	a.end = end
	a.chunk = min(2*a.chunk, walMaxChunk)
}

// close lets go of the log: done, failed, or the store is closing
// (Windows cannot delete a file that is open, and SQLite deletes the
// log when it closes the database).
func (a *walAhead) close() {
	if a != nil && a.f != nil {
		a.f.Close()
		a.f = nil
	}
}

// writeZeros fills f with zeros from off to end.
func writeZeros(f *os.File, off, end int64) error {
	zeros := make([]byte, min(end-off, segmentFlush))
	for off < end {
		n, err := f.WriteAt(zeros[:min(int64(len(zeros)), end-off)], off)
		if err != nil {
			return fmt.Errorf("write zeros: %w", err)
		}
		off += int64(n)
	}
	return nil
}
