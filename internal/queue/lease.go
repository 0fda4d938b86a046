package queue

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"time"

	"github.com/sluice-relay/sluice/internal/dsn"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/route"
)

// Work is a next hop with messages due now, for delivery to start
// sessions for.
type Work struct {
	route.Hop
	Due int // items due now, counted up to Sessions
	// Sessions is how many sessions the hop takes at once now: the
	// connector's max_connections, or fewer while its upstream refuses
	// more (HopBusy).
	Sessions int
}

// Ready returns the hops with messages due now and when the next hop
// will have work if none is ready before that (zero: nothing waits). It
// runs at every change of the queue: its cost must not grow with the
// number of messages waiting.
func (q *Queue) Ready() ([]Work, time.Time) {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	var work []Work
	var next time.Time
	for _, h := range q.hops {
		if h.Connector == nil {
			continue // Unreachable: nothing to deliver with
		}
		if h.due(now) {
			n := q.sessions(h.Key, h.Connector.MaxConnections, now)
			work = append(work, Work{Hop: h.Hop, Due: h.waiting.dueUpTo(now, n), Sessions: n})
			// Mail that fell due with time (a retry) woke no one, and
			// the dispatcher counts an idle session as busy.
			q.wakeOne(h.Key)
			continue
		}
		if t := h.nextDue(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return work, next
}

// Lease is one message's recipients for one next hop, handed to delivery.
// Env is a copy holding only the leased recipients, in the order of Rcpts.
type Lease struct {
	ID    mail.ID
	Env   mail.Envelope
	Rcpts []int // indexes of the leased recipients in the message
	Hop   route.Hop
	q     *Queue
	m     *Message
}

// Body opens the message content. A content the store cannot give
// (a checksum that fails, a file gone) marks the message unreadable
// until a later attempt reads it: health reports such messages, since
// they are retried until they expire and bounce.
func (l *Lease) Body(ctx context.Context) (io.ReadCloser, error) {
	r, err := l.q.store.Body(ctx, l.ID)
	switch {
	case err == nil:
		if l.m.unreadable.Load() != nil {
			l.m.unreadable.Store(nil)
		}
	case !errors.Is(err, ErrNotFound) && ctx.Err() == nil:
		msg := err.Error()
		l.m.unreadable.Store(&msg)
	}
	return r, err
}

// Lease takes the next due message for the hop, or nil if none is due.
func (q *Queue) Lease(key string) *Lease {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lease(key, now)
}

// lease (q.mu held) takes the hop's next due message.
func (q *Queue) lease(key string, now time.Time) *Lease {
	h := q.hops[key]
	if h == nil || !h.due(now) {
		return nil
	}
	it := heap.Pop(&h.waiting).(*item)
	it.leased = true
	h.leased++
	m := it.m
	l := &Lease{ID: m.ID, Env: m.Env, Hop: h.Hop, q: q, m: m}
	l.Env.Rcpts = nil
	for i := range m.Rcpts {
		r := &m.Rcpts[i]
		if !r.Status.Final() && r.hop == key && !r.leased {
			r.leased = true
			l.Rcpts = append(l.Rcpts, i)
			l.Env.Rcpts = append(l.Env.Rcpts, r.Recipient)
		}
	}
	return l
}

// Outcome is what happened to one leased recipient.
type Outcome struct {
	Reply     reply.Reply // the upstream's reply (or ours, for local failures)
	Host      string      // who answered: "exch1.contoso.com [10.0.0.5]"
	Delivered bool
	// Session is the id of the delivery session that gave the outcome,
	// as the send protocol log names it; empty when no connection was
	// made. Tracking events carry it, so a message's story leads to the
	// conversation, as a RECEIVE leads to the one that brought it.
	Session string
	// Handoff is, for a delivered recipient, who tells a sender that
	// asked (NOTIFY=SUCCESS) of the delivery.
	Handoff Handoff
	// Again, for a deferred recipient, says the upstream took no more
	// recipients in a transaction that delivered others (RFC 5321
	// §4.5.3.1.10): it goes in a new transaction at once, and it was no
	// failed attempt.
	Again bool
	// Local: Sluice refused the message itself before any of it went to
	// the upstream (too large for its SIZE, SMTPUTF8 not offered, TLS
	// required, content unreadable). Reply is then Sluice's and Host is
	// empty: no host said it.
	Local bool
}

// Handoff is what a delivery was in the terms of RFC 3461 §5.2, which
// decide whether Sluice sends the success notice a sender asked for.
type Handoff uint8

const (
	// HandoffRelayed: an upstream that does not offer DSN took the
	// message. It will send no notices, so Sluice sends a "relayed" one
	// (§5.2.2 (b)). The zero value: an upstream no one asked about
	// promised nothing.
	HandoffRelayed Handoff = iota
	// HandoffDSN: an upstream that offers DSN took the message with
	// NOTIFY passed on (§5.2.1 (c)): the notice is its to send, or the
	// next hop's, and Sluice sends none.
	HandoffDSN
	// HandoffDelivered: final delivery (a drop directory, §5.2.3 (a)):
	// Sluice sends a "delivered" notice.
	HandoffDelivered
)

// Done records the outcome of a lease, one Outcome per leased recipient
// in order; a recipient refused permanently or expired is bounced, and
// the sender of one delivered is told if it asked (NOTIFY=SUCCESS). It
// returns when the new state is durable. Fewer outcomes than recipients
// (nil: none) give the rest back untouched, as after an interrupted
// attempt. The state is written even when ctx is cancelled by a shutdown:
// an attempt that reached the upstream must be recorded, or it is
// repeated after the restart.
func (q *Queue) Done(ctx context.Context, l *Lease, outs []Outcome) {
	ctx = context.WithoutCancel(ctx)
	m := q.message(l.ID)
	if m == nil {
		return
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	now := q.now()
	q.mu.Lock()
	var bounced []int
	var succeeded []dsn.Recipient
	for j, i := range l.Rcpts {
		r := &m.Rcpts[i]
		r.leased = false
		if j >= len(outs) {
			continue // not attempted: stays as it was
		}
		o := outs[j]
		// A deferral at an attempt out of schedule is no attempt of the
		// schedule (retry.go).
		due := r.retryDue
		outOfSchedule := !o.Delivered && !o.Reply.Permanent() && !o.Again && now.Before(due)
		if !o.Again {
			r.retryDue = time.Time{}
			if !outOfSchedule {
				r.Attempts++
			}
		}
		r.LastAttempt = now
		switch {
		case o.Delivered:
			r.Status, r.LastError = StatusDelivered, ""
			if d, ok := successNotice(r, o, now); ok {
				succeeded = append(succeeded, d)
			}
		case o.Reply.Permanent():
			r.Status, r.LastError = StatusFailed, o.LastError()
			bounced = append(bounced, i)
		case o.Again:
			r.LastError, r.NextAttempt = o.LastError(), now
		default:
			r.LastError = o.LastError()
			r.NextAttempt = now.Add(q.backoff(l.Hop, r.Attempts))
			if outOfSchedule {
				r.NextAttempt = q.afterOutOfSchedule(l.Hop, due, now)
			}
			if q.expired(m, l.Hop, now) {
				r.Status = StatusExpired
				bounced = append(bounced, i)
			}
		}
	}
	q.trackOutcomes(m, l, outs)
	q.release(m, l.Hop.Key)
	q.mu.Unlock()
	if err := q.bounce(ctx, m, bounced, false); err != nil {
		q.mu.Lock()
		q.keepQueued(m, bounced, now.Add(q.backoff(l.Hop, 1)))
		q.mu.Unlock()
	}
	q.notifySuccess(ctx, m, succeeded)
	q.persist(ctx, m)
}

// HopFailed records a failure to reach the next hop at all (connection,
// TLS, AUTH, or a 421 before the upstream took a message on a new
// connection): the whole queue waits until its next retry, and its last
// error shows why (seed 003). The lease, if any, goes back untouched.
func (q *Queue) HopFailed(key string, l *Lease, o Outcome) {
	q.mu.Lock()
	now := q.now()
	if l != nil {
		q.leaseBack(key, l, o, now)
	}
	_, logged := q.hopFailed(key, o, now)
	q.mu.Unlock()
	q.logHopFailed(logged)
}

// HopRefusedAtMail records a 421 that answered lease l's MAIL on a new
// connection: the next hop failing, as HopFailed. It reports whether l
// is settled. If not, the caller settles it with Done and that 421, an
// attempt of the message with its own backoff: the refusal may be about
// its sender, and must then not come back at each of the queue's
// retries, and the message expires as any deferred one does. (Done
// writes to the store, which the caller may not wait for where it calls
// this.) An attempt out of schedule (retry.go) that meets the 421 leaves
// the message as it leaves the queue's schedule: l goes back untouched,
// settled. That message need not be one an operator retried: the
// queue's retry ended for all its messages that are due.
func (q *Queue) HopRefusedAtMail(key string, l *Lease, o Outcome) (settled bool) {
	q.mu.Lock()
	now := q.now()
	off, logged := q.hopFailed(key, o, now)
	if off {
		q.leaseBack(key, l, o, now)
	}
	q.mu.Unlock()
	q.logHopFailed(logged)
	return off
}

// leaseBack (q.mu held) returns l's recipients untouched by a failure
// of their next hop: not an attempt of their own (Attempts drives their
// backoff, and the queue's retry holds them anyway), but message show
// must say when they were last tried.
func (q *Queue) leaseBack(key string, l *Lease, o Outcome, now time.Time) {
	m := q.msgs[l.ID]
	if m == nil {
		return
	}
	for _, i := range l.Rcpts {
		m.Rcpts[i].leased = false
		m.Rcpts[i].LastError = o.LastError()
		m.Rcpts[i].LastAttempt = now
	}
	q.trackHopFailed(m, l, o)
	q.release(m, key)
}

// hopFailed (q.mu held) puts the hop in Retry after a failed attempt,
// and reports whether the attempt was out of schedule (retry.go), and
// what to log, once per attempt.
func (q *Queue) hopFailed(key string, o Outcome, now time.Time) (offSchedule bool, logged []any) {
	h := q.hops[key]
	if h == nil {
		return false, nil
	}
	h.lastError = o.LastError()
	if now.Before(h.nextRetry) {
		// Another session of the same attempt failed too (up to
		// max_connections start at once): one failed attempt, one step
		// of backoff, or a short outage would push the queue to
		// max_interval at once.
		return h.offSchedule, nil
	}
	due := h.retryDue
	h.retryDue = time.Time{}
	h.lastRetry = now
	h.offSchedule = now.Before(due)
	if h.offSchedule {
		// An attempt out of schedule (retry.go): the schedule stays.
		h.nextRetry = q.afterOutOfSchedule(h.Hop, due, now)
		logged = []any{"queue", key, "retries", h.retryCount, "next_retry", h.nextRetry, "last_error", h.lastError, "out_of_schedule", true}
	} else {
		h.retryCount++
		h.nextRetry = now.Add(q.backoff(h.Hop, h.retryCount))
		logged = []any{"queue", key, "retries", h.retryCount, "next_retry", h.nextRetry, "last_error", h.lastError}
	}
	if o.Session != "" {
		logged = append(logged, "session", o.Session)
	}
	return h.offSchedule, logged
}

func (q *Queue) logHopFailed(logged []any) {
	if logged != nil {
		q.log.Warn("next hop failed; queue in retry", logged...)
	}
}

// HopOK records that the next hop took a connection, and that connected
// sessions to it are connected now, this one included: its queue leaves
// the retry state, and its session limit is at least connected.
func (q *Queue) HopOK(key string, connected int) {
	now := q.now()
	q.mu.Lock()
	retries := 0
	if h := q.hops[key]; h != nil && h.retryCount > 0 {
		retries = h.retryCount
		h.retryCount, h.lastError, h.nextRetry, h.retryDue = 0, "", time.Time{}, time.Time{}
	}
	q.raiseLimit(key, connected, now)
	q.mu.Unlock()
	if retries > 0 {
		q.log.Info("next hop took a connection; queue out of retry", "queue", key, "retries", retries)
	}
}

// release (q.mu held) ends m's lease on hop key and schedules what is left.
func (q *Queue) release(m *Message, key string) {
	if h := q.hops[key]; h != nil {
		if it := h.items[m.ID]; it != nil && it.leased {
			it.leased = false
			h.leased--
			h.remove(m.ID)
		}
	}
	if m.pending() {
		q.schedule(m)
	}
	// Also when m still waits elsewhere: schedule drops only the old
	// hops that still hold m, and this one no longer does.
	if h := q.hops[key]; h != nil {
		q.dropIfEmpty(h)
	}
}

func (q *Queue) message(id mail.ID) *Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.msgs[id]
}

// persist writes m's state, or deletes it once every recipient is final.
// m.writeMu is held, so the state written is the latest.
func (q *Queue) persist(ctx context.Context, m *Message) {
	q.mu.Lock()
	done := !m.pending()
	meta := m.encode()
	q.mu.Unlock()
	if done {
		if err := q.store.Delete(ctx, m.ID); err != nil {
			q.log.Error("cannot delete delivered message from the queue store; it may be delivered again after a restart", "msg", m.ID, "err", err)
			return
		}
		q.mu.Lock()
		delete(q.msgs, m.ID)
		q.mu.Unlock()
		return
	}
	if err := q.store.Update(ctx, m.ID, meta); err != nil {
		q.log.Error("cannot record delivery state in the queue store; recipients may be tried again after a restart", "msg", m.ID, "err", err)
	}
}

// LastError renders the outcome as the queue's last error: the
// upstream's reply, with who said it ("host said: reply"). Health reads
// that form back.
func (o Outcome) LastError() string {
	s := o.Reply.Error()
	if o.Host != "" {
		s = o.Host + " said: " + s
	}
	return s
}
