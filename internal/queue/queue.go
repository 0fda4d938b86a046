package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/metrics"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/route"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// Options are what a Queue is built from.
type Options struct {
	Store  Store
	Config *config.Config
	Log    *slog.Logger
	Now    func() time.Time // the clock; time.Now when nil
	// Tracking receives SUBMIT, SEND, DEFER, FAIL, DSN, EXPIRE and operator
	// events; nil records none.
	Tracking *tracking.Log
	Metrics  *metrics.Metrics
}

// Queue is the set of queued messages and their next hops.
type Queue struct {
	store    Store
	log      *slog.Logger
	tracking *tracking.Log
	metrics  *metrics.Metrics
	now      func() time.Time
	space    *spaceCheck

	mu   sync.Mutex
	cfg  *config.Config
	msgs map[mail.ID]*Message
	hops map[string]*NextHop
	// poison are the messages whose record cannot be read (poison.go).
	poison map[mail.ID]poisoned
	wake   chan struct{}
	// idle are the delivery sessions waiting in Await, per next hop, in
	// the order they went idle.
	idle map[string][]chan struct{}
	// limits are the session limits of hops whose upstream refused
	// more sessions (limit.go).
	limits map[string]*sessionLimit
}

// Open builds the queue from what the store holds: every message that was
// not finished when Sluice stopped (or crashed) is routed again and
// scheduled.
func Open(ctx context.Context, o Options) (*Queue, error) {
	q := &Queue{
		store:    o.Store,
		log:      o.Log,
		tracking: o.Tracking,
		metrics:  o.Metrics,
		now:      o.Now,
		cfg:      o.Config,
		msgs:     map[mail.ID]*Message{},
		hops:     map[string]*NextHop{},
		poison:   map[mail.ID]poisoned{},
		wake:     make(chan struct{}, 1),
		idle:     map[string][]chan struct{}{},
		limits:   map[string]*sessionLimit{},
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if q.now == nil {
		q.now = time.Now
	}
	q.space = newSpaceCheck(o.Config.Node.DataDir, int64(o.Config.Queue.MinFreeSpace))
	var done []*Message
	err := o.Store.Load(ctx, func(id mail.ID, meta []byte, size int64) error {
		m, err := decode(id, meta, size)
		if err != nil {
			// A damaged record is kept in the store for an operator to
			// look at, never silently dropped: it shows in the Poison
			// queue.
			q.log.Error("queued message cannot be read; left in the store, in the Poison queue", "msg", id, "err", err,
				"fix", "sluice message show "+string(id)+"; sluice message remove "+string(id)+" once dealt with")
			q.poison[id] = poisoned{size: size, why: err.Error()}
			return nil
		}
		if !m.pending() {
			done = append(done, m)
			return nil
		}
		q.msgs[id] = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	for _, m := range q.msgs {
		q.schedule(m)
	}
	q.mu.Unlock()
	for _, m := range done {
		// Finished before the crash but not yet deleted.
		if err := q.store.Delete(ctx, m.ID); err != nil {
			q.log.Error("cannot delete finished message", "msg", m.ID, "err", err)
		}
	}
	if n := len(q.msgs); n > 0 {
		q.log.Info("queue recovered", "messages", n, "queues", len(q.hops))
	}
	q.signal()
	return q, nil
}

// Apply routes every waiting recipient again with a new config: a changed
// address space or smarthost list applies to mail already queued, as in
// Exchange after a connector change. A queue whose next hop was failing
// is tried again at once, with the new settings: the reload is usually
// the fix (seed 003: correct the certificate, restart the transport, and
// the queues start to empty), so its messages should not sit out a retry
// interval of up to an hour. The queue section (min_free_space) applies
// at once too.
func (q *Queue) Apply(cfg *config.Config) {
	q.space.setMin(int64(cfg.Queue.MinFreeSpace))
	now := q.now()
	q.mu.Lock()
	q.cfg = cfg
	for _, m := range q.msgs {
		q.schedule(m)
	}
	for key, h := range q.hops {
		for _, it := range h.items {
			// The connector's new settings, from a recipient that still
			// routes here: a recipient being delivered keeps its queue
			// until the attempt ends, though the new config may send it
			// elsewhere, and the queue must keep its identity.
			if hop := q.routeKey(it.m, key); hop.Key == key {
				h.Hop = hop
				break
			}
		}
		if h.retryCount > 0 {
			h.dueNow(now)
		}
	}
	q.mu.Unlock()
	q.signal()
}

// Put queues a new message. It returns only when the message is durable
// (see the package doc), and sets env.Size. It is smtpd's Spool.
func (q *Queue) Put(ctx context.Context, env *mail.Envelope, body io.Reader) error {
	if err := q.space.ok(); err != nil {
		q.log.Warn("message refused: disk space low", "msg", env.ID, "err", err)
		return reply.StoreFull
	}
	m := &Message{ID: env.ID, Env: *env}
	m.Rcpts = make([]Rcpt, len(env.Rcpts))
	for i, r := range env.Rcpts {
		m.Rcpts[i] = Rcpt{Recipient: r, Status: StatusQueued}
	}
	n, err := q.store.Add(ctx, env.ID, m.encode(), body)
	if err != nil {
		if r, ok := reply.As(err); ok {
			return r // the content was refused while being read (too big, bare LF, ...)
		}
		if errors.Is(err, ErrNoSpace) {
			q.log.Error("message refused: the queue's disk is full", "msg", env.ID, "err", err)
			return reply.StoreFull
		}
		return fmt.Errorf("queue: store %s: %w", env.ID, err)
	}
	env.Size, m.Env.Size, m.Size = n, n, n
	q.mu.Lock()
	q.msgs[m.ID] = m
	q.schedule(m)
	q.trackSubmit(m)
	q.mu.Unlock()
	return nil
}

// schedule (q.mu held) puts each waiting recipient of m in the queue of
// its next hop and takes m out of queues it no longer has recipients for.
func (q *Queue) schedule(m *Message) {
	now := q.now()
	old := map[string]bool{}
	due := map[string]time.Time{}
	for i := range m.Rcpts {
		r := &m.Rcpts[i]
		if r.hop != "" {
			old[r.hop] = true
		}
		if r.Status.Final() {
			continue
		}
		if !r.leased {
			key := route.Via(q.cfg, m.Env.Via, r.Addr).Key
			if r.hop != "" && key != r.hop {
				// Routed elsewhere by a reload or a redirect: the wait
				// was the old next hop's, and the change is usually the
				// fix.
				r.NextAttempt, r.retryDue = time.Time{}, time.Time{}
			}
			r.hop = key
		}
		t := r.NextAttempt
		if t.Before(now) {
			t = now
		}
		if d, ok := due[r.hop]; !ok || t.Before(d) {
			due[r.hop] = t
		}
	}
	for key := range old {
		if _, ok := due[key]; ok {
			continue
		}
		if h := q.hops[key]; h != nil {
			if it := h.items[m.ID]; it != nil && !it.leased {
				h.remove(m.ID)
				q.dropIfEmpty(h)
			}
		}
	}
	for key, t := range due {
		h := q.hops[key]
		if h == nil {
			h = newHop(q.routeKey(m, key))
			q.hops[key] = h
		}
		h.put(m, t)
		// Due now: a session waiting on the hop takes it. Otherwise the
		// dispatcher looks: it may start a session, or wait until t.
		if t.After(now) || !q.wakeOne(key) {
			q.poke()
		}
	}
}

// routeKey returns the route of the hop called key, from one of m's
// recipients routed there.
func (q *Queue) routeKey(m *Message, key string) route.Hop {
	for _, r := range m.Rcpts {
		if r.hop == key {
			return route.Via(q.cfg, m.Env.Via, r.Addr)
		}
	}
	return route.Hop{Key: key}
}

// dropIfEmpty forgets a queue with nothing in it, unless an operator
// suspended it.
func (q *Queue) dropIfEmpty(h *NextHop) {
	if len(h.items) == 0 && h.leased == 0 && !h.suspended {
		delete(q.hops, h.Key)
	}
}

// Wake is signalled when there may be new work for delivery.
func (q *Queue) Wake() <-chan struct{} { return q.wake }

// poke tells delivery's dispatcher to look again. Scheduling a message
// does, unless a waiting session took it: Put and Done need no more.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// signal wakes the dispatcher and every waiting session, after a change
// that may have made mail due other than by scheduling it: a hop resumed
// or retried, a new config.
func (q *Queue) signal() {
	q.poke()
	q.mu.Lock()
	q.wakeAll()
	q.mu.Unlock()
}

// Len is the number of messages in the queue.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// Close releases the store.
func (q *Queue) Close() error { return q.store.Close() }

// Kick asks delivery's dispatcher to look for due mail again (a session
// ended: the hop may need another).
func (q *Queue) Kick() { q.poke() }
