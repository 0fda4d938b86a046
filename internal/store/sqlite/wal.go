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
// behind. Only the space past the file's end is written, and only by
// the writer between commits, when nothing else writes the log (no
// other connection writes; checkpoints run inside the writer's
// commits). Best effort, like a segment's preparation: if the disk
// cannot take a chunk, the log is cut back and grows as it would have.
type walAhead struct {
	f      *os.File // nil once done
	end    int64    // where the zeros end
	target int64
	chunk  int64
}

// newWALAhead writes the first chunk; nil if the log cannot be found
// or needs none.
func newWALAhead(ctx context.Context, w *sql.Conn, path string) *walAhead {
	var pageSize int64
	if err := w.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil || pageSize <= 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil // no log yet: SQLite makes it at the first write
	}
	a := &walAhead{f: f, end: -1, chunk: walFirstChunk,
		target: walHeader + (walCheckpointPages+walSlackFrames)*(walFrameHeader+pageSize)}
	a.advance()
	if a.f == nil {
		return nil
	}
	return a
}

// advance writes the next chunk if SQLite has written past the zeros.
// Writer goroutine only, between commits.
func (a *walAhead) advance() {
	if a == nil || a.f == nil {
		return
	}
	fi, err := a.f.Stat()
	if err != nil {
		a.close()
		return
	}
	size := fi.Size()
	if size >= a.target {
		a.close()
		return
	}
	if size <= a.end {
		return // SQLite is still writing over zeros
	}
	end := min(size+a.chunk, a.target)
	if a.target-end < a.chunk {
		// The rest too: a checkpoint may start the log over before
		// it reaches a last small chunk, and this would go on looking.
		end = a.target
	}
	if err := writeZeros(a.f, size, end); err != nil {
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
