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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(fmt.Errorf("queue store: begin: %w", mapErr(err)))
	}
	for i, o := range batch {
		err := exec(ctx, tx, o)
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

func exec(ctx context.Context, tx *sql.Tx, o *op) error {
	var err error
	switch o.kind {
	case opAdd:
		if _, err = tx.ExecContext(ctx, "INSERT INTO messages (id, meta) VALUES (?, ?)", string(o.id), o.meta); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO bodies (id, size, data, in_file) VALUES (?, ?, ?, ?)", string(o.id), o.size, o.body, o.inFile)
	case opUpdate:
		var res sql.Result
		res, err = tx.ExecContext(ctx, "UPDATE messages SET meta = ? WHERE id = ?", o.meta, string(o.id))
		if err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				return queue.ErrNotFound
			}
		}
	case opDelete:
		if _, err = tx.ExecContext(ctx, "DELETE FROM messages WHERE id = ?", string(o.id)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM bodies WHERE id = ?", string(o.id))
	}
	return err
}
