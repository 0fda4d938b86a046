package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-relay/sluice/internal/queue"
)

// maxBatch bounds one transaction, so a commit's latency stays bounded
// under load.
const maxBatch = 512

// writer is the only goroutine that writes: it takes every op that is
// waiting, commits them in one transaction (one fsync of the WAL for all),
// then answers each.
func (s *Store) writer() {
	defer close(s.done)
	ctx := context.Background()
	batch := make([]*op, 0, maxBatch)
	for o := range s.ops {
		batch = append(batch[:0], o)
	fill:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		start := time.Now()
		errs := s.commit(ctx, batch)
		if f := s.onCommit.Load(); f != nil {
			(*f)(time.Since(start))
		}
		for i, o := range batch {
			o.err <- errs[i]
		}
	}
}

// commit runs a batch in one transaction and returns each op's result:
// an op that finds no message fails alone; any other error fails the batch,
// since the transaction is rolled back.
func (s *Store) commit(ctx context.Context, batch []*op) []error {
	errs := make([]error, len(batch))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	// A batch of lazy deletes only is committed without waiting for the
	// disk (synchronous NORMAL); anything else with a full fsync, which in
	// WAL mode also makes every earlier commit durable.
	sync := false
	for _, o := range batch {
		sync = sync || !o.lazy
	}
	if sync != s.synced {
		mode := "NORMAL"
		if sync {
			mode = "FULL"
		}
		if _, err := s.w.ExecContext(ctx, "PRAGMA synchronous = "+mode); err != nil {
			return fail(fmt.Errorf("queue store: set synchronous: %w", mapErr(err)))
		}
		s.synced = sync
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(fmt.Errorf("queue store: begin: %w", mapErr(err)))
	}
	for i, o := range batch {
		err := s.exec(ctx, tx, o)
		if errors.Is(err, queue.ErrNotFound) {
			errs[i] = err
			continue
		}
		if err != nil {
			tx.Rollback()
			return fail(fmt.Errorf("queue store: %s: %w", o.id, mapErr(err)))
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("queue store: commit: %w", mapErr(err)))
	}
	return errs
}

const (
	sqlInsMsg  = "INSERT INTO messages (id, meta) VALUES (?, ?)"
	sqlInsBody = "INSERT INTO bodies (id, size, data, in_file) VALUES (?, ?, ?, ?)"
	sqlUpdMsg  = "UPDATE messages SET meta = ? WHERE id = ?"
	sqlDelMsg  = "DELETE FROM messages WHERE id = ?"
	sqlDelBody = "DELETE FROM bodies WHERE id = ?"
)

// exec runs one op in tx with the statements prepared at Open (preparing
// them per message cost as much as executing them).
func (s *Store) exec(ctx context.Context, tx *sql.Tx, o *op) error {
	run := func(q string, args ...any) (sql.Result, error) {
		return tx.StmtContext(ctx, s.stmts[q]).ExecContext(ctx, args...)
	}
	var err error
	switch o.kind {
	case opAdd:
		if _, err = run(sqlInsMsg, string(o.id), o.meta); err != nil {
			return err
		}
		_, err = run(sqlInsBody, string(o.id), o.size, o.body, o.inFile)
	case opUpdate:
		var res sql.Result
		res, err = run(sqlUpdMsg, o.meta, string(o.id))
		if err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				return queue.ErrNotFound
			}
		}
	case opDelete:
		if _, err = run(sqlDelMsg, string(o.id)); err != nil {
			return err
		}
		_, err = run(sqlDelBody, string(o.id))
	}
	return err
}
