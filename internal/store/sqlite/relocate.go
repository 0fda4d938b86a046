package sqlite

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
)

// A segment goes only once nothing in it is referred to, and nothing is
// ever written into it again. A message that waits (a greylisting or full
// mailbox, a dead domain: up to the two days of its expiry, or in the
// Poison queue until an operator removes it) keeps its whole segment, so
// with one such message per segment the disk held about every segment
// written in two days: 111 MiB in 14 files for 640 KiB of live content,
// in the review's measure. So the few contents left in an old segment are
// moved to the active one: each is copied there (read back against its
// checksum), then one durable commit, whose batch the writer syncs the
// segment for first, points its
// row at the copy, if the row still points where it was copied from; the
// old segment then dies as if they had been delivered. A crash before
// that commit leaves the rows where they were, and the copies space no
// row refers to, as a content given up while arriving: a segment holding
// nothing else is removed at the next Open. The active segment rather
// than files of their own: the checksum and lazy deletes stay, one
// fdatasync covers many contents and no directory entry is made, and
// its space is on disk already (a rotation takes a segment kept for
// reuse first), so relocation asks little of a disk that is nearly full.

// relocateAfter is how long a segment must have been sealed before its
// contents are moved: until then most of them are being delivered (a
// variable for tests).
var relocateAfter = time.Hour

// relocateBelow: a segment is sparse when its live contents take less
// than 1/relocateBelow of segmentMax; moving them costs at most that
// much writing for a whole segment freed (a variable for tests).
var relocateBelow int64 = 10

// relocateEvery is how often sparse segments are looked for.
const relocateEvery = time.Minute

// relocatePass bounds the octets moved in one pass, relocateGroup those
// moved by one commit: a batch of adds that meets them waits for at most
// that much more to be synced.
const relocatePass, relocateGroup = 64 << 20, 4 << 20

// moving is a content to be moved, and where it is.
type moving struct {
	id mail.ID
	l  location
}

// relocator moves contents out of sparse segments every relocateEvery,
// until the store closes.
func (s *Store) relocator() {
	defer close(s.relocated)
	tick := time.NewTicker(relocateEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-tick.C:
			// Best effort: what failed (a full disk, a content that no
			// longer matches its checksum) stays where it is, and is
			// tried again at the next pass.
			s.relocate(context.Background())
		}
	}
}

// relocate moves the contents of the sparse segments, up to
// relocatePass octets, and reports how many it moved.
func (s *Store) relocate(ctx context.Context) (int, error) {
	s.relocating.Lock()
	defer s.relocating.Unlock()
	todo := s.seg.sparse(time.Now(), relocatePass)
	moved := 0
	for len(todo) > 0 {
		n, size := 0, int64(0)
		for n < len(todo) && (n == 0 || size+todo[n].l.size <= relocateGroup) {
			size += todo[n].l.size
			n++
		}
		ops, err := s.copyOut(todo[:n])
		if err != nil {
			return moved, err
		}
		k, err := s.commitMoves(ctx, ops)
		moved += k
		if err != nil {
			return moved, err
		}
		todo = todo[n:]
	}
	return moved, nil
}

// sparse lists the contents of the segments that are sealed since
// relocateAfter and sparse, oldest segment first and in the order they
// are in it, as many segments as limit octets take (one at least).
func (g *segments) sparse(now time.Time, limit int64) []moving {
	g.mu.Lock()
	defer g.mu.Unlock()
	var nos []int64
	for no, n := range g.bytes {
		// Sealed: neither active nor written into, and never again.
		if at, ok := g.sealed[no]; ok && now.Sub(at) >= relocateAfter && n*relocateBelow < segmentMax {
			nos = append(nos, no)
		}
	}
	slices.Sort(nos)
	take := map[int64]bool{}
	var total int64
	for _, no := range nos {
		if total > 0 && total+g.bytes[no] > limit {
			break
		}
		take[no] = true
		total += g.bytes[no]
	}
	if len(take) == 0 {
		return nil
	}
	var ms []moving
	for id, l := range g.at {
		if take[l.seg] {
			ms = append(ms, moving{id, l})
		}
	}
	slices.SortFunc(ms, func(a, b moving) int {
		return cmp.Or(cmp.Compare(a.l.seg, b.l.seg), cmp.Compare(a.l.off, b.l.off))
	})
	return ms
}

// copyOut copies each content into the active segment and syncs it,
// returning the moves for the writer to commit; each holds its extent
// until then. A content that cannot be read whole (gone with its
// segment, or not matching its checksum) stays where it is.
func (s *Store) copyOut(ms []moving) ([]*op, error) {
	var ops []*op
	giveUp := func(err error) ([]*op, error) {
		for _, o := range ops {
			s.seg.release(o.ext)
		}
		return nil, err
	}
	bp := s.whole.get()
	data := *bp
	defer func() { s.whole.put(bp, data) }()
	for _, m := range ms {
		if _, ok := s.deleting.Load(m.id); ok {
			continue
		}
		var err error
		if data, err = readSegment(s.segDir, m.l, data); err != nil {
			continue
		}
		e, err := s.seg.reserve(m.l.size)
		if err != nil {
			return giveUp(mapErr(err))
		}
		if _, err := e.seg.f.WriteAt(data, e.off); err != nil {
			s.seg.release(e)
			return giveUp(mapErr(fmt.Errorf("queue store: copy content to segment %d: %w", e.seg.no, err)))
		}
		ops = append(ops, &op{kind: opMove, id: m.id, size: m.l.size, ext: e, crc: m.l.crc, from: m.l})
	}
	// Not synced here: the writer syncs the segments of the batch the
	// moves commit in, as it does for adds, and only one goroutine may.
	// A failed writeback is reported once per open file: synced here
	// too, the writer's fdatasync could return 0 after this one had the
	// error, and commit an add whose pages were lost.
	return ops, nil
}

// commitMoves hands the moves to the writer and waits for their commit,
// reporting how many moved. A content deleted meanwhile is not moved.
func (s *Store) commitMoves(ctx context.Context, ops []*op) (int, error) {
	sent := 0
	var err error
	for _, o := range ops {
		o.err = make(chan error, 1)
		if err = s.enqueue(ctx, o); err != nil {
			break
		}
		sent++
	}
	for _, o := range ops[sent:] {
		s.seg.release(o.ext)
	}
	// The writer has the ops sent, and answers each: waited for
	// whatever ctx does, as their extents are its to settle.
	moved := 0
	for _, o := range ops[:sent] {
		switch oerr := <-o.err; {
		case oerr == nil:
			moved++
		case !errors.Is(oerr, queue.ErrNotFound):
			err = cmp.Or(err, oerr)
		}
	}
	return moved, err
}
