package sqlite

import (
	"context"
	"os"
	"path/filepath"

	"github.com/sluice-relay/sluice/internal/safeio"
)

// walCheckpointPages is the size of the write-ahead log, in pages, at
// which SQLite copies it into the database and starts it over from its
// beginning (wal_autocheckpoint; a variable for tests).
var walCheckpointPages int64 = 16384

// walSlackFrames are frames past walCheckpointPages: the commit that
// crosses it is written whole before the checkpoint.
const walSlackFrames = 1024

// logSpareFactor: the log is presized only on a disk with this many
// times the zeros free.
const logSpareFactor = 4

// freeSpace is safeio.FreeSpace (a variable for tests).
var freeSpace = safeio.FreeSpace

// Sizes of the log's header and of each frame's header, from SQLite's
// file format.
const walHeader, walFrameHeader = 32, 24

// presizeLog writes zeros after the write-ahead log until it has the
// size it reaches before a checkpoint starts it over, and syncs them.
// A commit that appends to the file makes its fdatasync commit file
// system metadata as well (on the benchmark VM ~200 µs against ~100
// overwriting), and a fresh log grows for its first 64 MiB: at one
// connection, a fresh store's first ~2,300 messages took ~480 µs from
// the final dot to the 250, later ones ~350. PostgreSQL zero-fills
// its WAL segments for the same reason (wal_init_zero); segments are
// prepared so too. SQLite deletes the log when the last connection
// closes cleanly, so every Open writes it again: ~72 MB, ~50 ms here.
//
// Zeros are not frames: a frame counts only if its page number is not
// 0 and its salt matches the header's (walDecodeFrame), and recovery
// stops at the first that does not, as it does at the frames of an
// earlier round that a restarted log leaves behind; a log whose header
// is zeros is empty.
//
// They are written from the file's end, or from the start of a frame a
// crash left torn there: completed with the very zeros it lacked, such
// a frame could pass its checksum, and a second crash would bring back a
// commit the first recovery had dropped. Open calls it before the writer
// starts, inside an empty transaction holding SQLite's write lock, so no
// other connection (an operator's sqlite3) writes the log meanwhile; an
// empty transaction writes nothing to it.
//
// Best effort: if the disk cannot take the zeros, the log is cut back
// and grows as it would have. On a disk with less than logSpareFactor
// times the log's size free it is left to grow: taking the space at
// once could put the queue under its min_free_space (452 4.3.1) at
// start, for a speed-up.
func (s *Store) presizeLog(ctx context.Context) {
	var pageSize int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil || pageSize <= 0 {
		return
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "queue.db-wal"), os.O_RDWR, 0)
	if err != nil {
		return // no log: SQLite makes it at the first write
	}
	defer f.Close()
	if err := s.run(ctx, sqlBegin); err != nil {
		return // another writer held the log past the busy timeout
	}
	defer s.run(ctx, sqlRollback)
	fi, err := f.Stat()
	if err != nil {
		return
	}
	size := fi.Size()
	frame := walFrameHeader + pageSize
	target := walHeader + (walCheckpointPages+walSlackFrames)*frame
	if size >= target {
		return
	}
	if free, err := freeSpace(s.dir); err != nil || free < logSpareFactor*(target-size) {
		return
	}
	from := int64(0) // a torn header: the log is empty
	if size >= walHeader {
		from = walHeader + (size-walHeader)/frame*frame
	}
	if err := writeZeros(f, from, target); err != nil || datasync(f) != nil {
		f.Truncate(size)
	}
}

// writeZeros writes zeros over f from off up to end, a segmentFlush at
// a time.
func writeZeros(f *os.File, off, end int64) error {
	zeros := make([]byte, min(end-off, segmentFlush))
	for ; off < end; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), end-off)], off); err != nil {
			return err
		}
	}
	return nil
}
