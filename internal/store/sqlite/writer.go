package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-relay/sluice/internal/queue"
)

// maxBatch bounds one transaction, so a commit's latency stays bounded
// under load.
const maxBatch = 512

// lazyWait is how long a batch of lazy deletes waits for a write that
// has to be durable, to share its transaction. At one connection every
// message would otherwise cost two commits, its add and its delete. A
// variable for tests only.
var lazyWait = 50 * time.Millisecond

// writer is the only goroutine that writes: it takes every op that is
// waiting, commits them in one transaction (one fsync of the WAL for all),
// then answers each.
func (s *Store) writer() {
	defer close(s.done)
	ctx := context.Background()
	batch := make([]*op, 0, maxBatch)
	wait := time.NewTimer(lazyWait)
	wait.Stop()
	for o := range s.ops {
		batch = s.fill(append(batch[:0], o))
		if lazyOnly(batch) {
			batch = s.await(batch, wait)
		}
		start := time.Now()
		errs := s.commit(ctx, batch)
		if f := s.onCommit.Load(); f != nil {
			(*f)(time.Since(start))
		}
		for i, o := range batch {
			if o.lazy {
				s.deleting.Delete(o.id)
			}
			o.err <- errs[i]
		}
	}
}

// fill adds the ops already waiting, without blocking.
func (s *Store) fill(batch []*op) []*op {
	for len(batch) < maxBatch {
		select {
		case o, ok := <-s.ops:
			if !ok {
				return batch
			}
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// await holds a batch of lazy deletes for up to lazyWait, until an op
// that must be durable joins it.
func (s *Store) await(batch []*op, wait *time.Timer) []*op {
	wait.Reset(lazyWait)
	defer wait.Stop()
	for len(batch) < maxBatch {
		select {
		case o, ok := <-s.ops:
			if !ok {
				return batch
			}
			batch = append(batch, o)
			if !o.lazy {
				return s.fill(batch)
			}
		case <-wait.C:
			return batch
		}
	}
	return batch
}

func lazyOnly(batch []*op) bool {
	for _, o := range batch {
		if !o.lazy {
			return false
		}
	}
	return true
}

// commit runs a batch in one transaction and returns each op's result:
// an op that finds no message fails alone; any other error fails the batch,
// since the transaction is rolled back.
func (s *Store) commit(ctx context.Context, batch []*op) []error {
	errs := make([]error, len(batch))
	committed, synced := false, false
	defer func() { s.settle(batch, errs, committed, synced) }()
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	// A batch of lazy deletes only is committed without waiting for the
	// disk (synchronous NORMAL); anything else with a full fsync, which in
	// WAL mode also makes every earlier commit durable (if it wrote).
	sync := !lazyOnly(batch)
	if sync != s.synced {
		if err := s.setSynchronous(ctx, sync); err != nil {
			return fail(err)
		}
	}
	if err := s.syncSegments(batch); err != nil {
		return fail(err)
	}
	if err := s.run(ctx, sqlBegin); err != nil {
		return fail(fmt.Errorf("queue store: begin: %w", mapErr(err)))
	}
	changed := false
	for i, o := range batch {
		n, err := s.exec(ctx, o)
		changed = changed || n > 0
		if errors.Is(err, queue.ErrNotFound) {
			errs[i] = err
			continue
		}
		if err != nil {
			s.run(ctx, sqlRollback)
			return fail(fmt.Errorf("queue store: %s: %w", o.id, mapErr(err)))
		}
	}
	if err := s.run(ctx, sqlCommit); err != nil {
		s.run(ctx, sqlRollback)
		return fail(fmt.Errorf("queue store: commit: %w", mapErr(err)))
	}
	committed = true
	// SQLite syncs the log only for a transaction that changed a page:
	// one that changed no row (Load's opSync, an Update of a message
	// gone) leaves the lazy deletes before it unsynced.
	synced = sync && changed
	return errs
}

// settle tells the segments what became of a batch: the contents it
// wrote there are referred to now, or given up; its moves took contents
// from one segment to another; its deletes took contents away. After a
// commit that synced the log, live counts every row there is, and the
// dead segments can go.
func (s *Store) settle(batch []*op, errs []error, committed, synced bool) {
	for i, o := range batch {
		switch {
		case o.kind == opMove && committed && errs[i] == nil:
			s.seg.moved(o.id, o.ext, o.from, o.location())
		case o.kind == opMove:
			s.seg.release(o.ext)
		case o.segmented() && committed:
			s.seg.committed(o.id, o.ext, o.location())
		case o.segmented():
			s.seg.release(o.ext)
		case o.kind == opDelete && committed && errs[i] == nil:
			s.seg.deleted(o.id)
		}
	}
	if synced {
		s.seg.removeDead()
	}
}

// syncSegments makes the contents the batch wrote to segments durable,
// before any row refers to them: one fdatasync per segment, however many
// sessions wrote there.
func (s *Store) syncSegments(batch []*op) error {
	var synced []*segment
	for _, o := range batch {
		if !o.segmented() || slices.Contains(synced, o.ext.seg) {
			continue
		}
		if s.seg.isFailed(o.ext.seg) {
			return fmt.Errorf("queue store: content segment %d failed to sync earlier", o.ext.seg.no)
		}
		if err := syncFile(o.ext.seg.f); err != nil {
			s.seg.markFailed(o.ext.seg)
			return mapErr(fmt.Errorf("queue store: sync content segment: %w", err))
		}
		synced = append(synced, o.ext.seg)
	}
	return nil
}

// The writer's statements, all prepared once at Open on its connection.
// The transaction is begun and ended by statements of its own rather than
// database/sql's Tx, whose StmtContext prepares a Conn's statement again
// for every use: parsing SQL cost as much as executing it.
const (
	sqlBegin    = "BEGIN IMMEDIATE"
	sqlCommit   = "COMMIT"
	sqlRollback = "ROLLBACK"
	sqlInsMsg   = "INSERT INTO messages (id, meta, size) VALUES (?, ?, ?)"
	sqlInsBody  = "INSERT INTO bodies (id, size, data, in_file, seg, off, crc) VALUES (?, ?, ?, ?, ?, ?, ?)"
	sqlUpdMsg   = "UPDATE messages SET meta = ? WHERE id = ?"
	sqlDelMsg   = "DELETE FROM messages WHERE id = ?"
	sqlDelBody  = "DELETE FROM bodies WHERE id = ?"
	sqlMove     = "UPDATE bodies SET seg = ?, off = ? WHERE id = ? AND seg = ? AND off = ?"
)

// writerStatements are prepared at Open.
var writerStatements = []string{sqlBegin, sqlCommit, sqlRollback,
	sqlInsMsg, sqlInsBody, sqlUpdMsg, sqlDelMsg, sqlDelBody, sqlMove}

// setSynchronous switches the writer's connection between a commit that
// waits for the disk (FULL) and one that does not (NORMAL). Never from a
// prepared statement: SQLite applies PRAGMA synchronous when it parses
// the statement, and running it later does nothing. (Preparing both
// once left every commit at NORMAL, the last one parsed: no fsync.)
func (s *Store) setSynchronous(ctx context.Context, full bool) error {
	mode := "NORMAL"
	if full {
		mode = "FULL"
	}
	if _, err := s.w.ExecContext(ctx, "PRAGMA synchronous = "+mode); err != nil {
		return fmt.Errorf("queue store: set synchronous: %w", mapErr(err))
	}
	s.synced = full
	return nil
}

// run executes one of the writer's prepared statements.
func (s *Store) run(ctx context.Context, q string, args ...any) error {
	_, err := s.stmts[q].ExecContext(ctx, args...)
	return err
}

// exec runs one op inside the writer's open transaction, and returns the
// rows it changed.
func (s *Store) exec(ctx context.Context, o *op) (int64, error) {
	var changed int64
	run := func(q string, args ...any) (int64, error) {
		res, err := s.stmts[q].ExecContext(ctx, args...)
		if err != nil {
			return 0, err
		}
		n, _ := res.RowsAffected()
		changed += n
		return n, nil
	}
	var err error
	switch o.kind {
	case opAdd:
		if _, err = run(sqlInsMsg, string(o.id), o.meta, o.size); err != nil {
			return changed, err
		}
		switch {
		case o.inFile:
			_, err = run(sqlInsBody, string(o.id), o.size, nil, true, nil, nil, nil)
		case o.segmented():
			loc := o.location()
			_, err = run(sqlInsBody, string(o.id), o.size, nil, false, loc.seg, loc.off, int64(loc.crc))
		default:
			_, err = run(sqlInsBody, string(o.id), o.size, o.body, false, nil, nil, nil)
		}
	case opUpdate:
		var n int64
		if n, err = run(sqlUpdMsg, o.meta, string(o.id)); err == nil && n == 0 {
			return changed, queue.ErrNotFound
		}
	case opDelete:
		if _, err = run(sqlDelMsg, string(o.id)); err != nil {
			return changed, err
		}
		_, err = run(sqlDelBody, string(o.id))
	case opMove:
		// Only a row still where the copy was made from: one deleted
		// meanwhile stays deleted.
		var n int64
		to := o.location()
		if n, err = run(sqlMove, to.seg, to.off, string(o.id), o.from.seg, o.from.off); err == nil && n == 0 {
			return changed, queue.ErrNotFound
		}
	}
	return changed, err
}
