package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/route"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// Operator errors, phrased for the CLI.
var (
	ErrNoQueue   = errors.New("no such queue; sluice queue list shows the queues")
	ErrNoMessage = errors.New("no such message in the queue; it may have been delivered already (sluice track shows its story)")
	ErrInFlight  = errors.New("the message is being delivered right now; try again in a moment")
	ErrPoisoned  = errors.New("its record cannot be read (the Poison queue), so it can be neither delivered nor redirected; sluice message remove ID takes it out of the queue")
)

// missing is the error for a message or queue id the queue has no
// deliverable entry for: ErrPoisoned for the Poison queue and its
// messages, else notFound. q.mu is held.
func (q *Queue) missing(id string, notFound error) error {
	if _, ok := q.poison[mail.ID(id)]; ok || id == Poison && len(q.poison) > 0 {
		return ErrPoisoned
	}
	return notFound
}

// RetryQueue makes every message in the queue due now and ends the
// queue's retry wait, like Exchange's Retry-Queue: out of schedule
// (retry.go), so a failure leaves the retry schedule as it was.
func (q *Queue) RetryQueue(identity string) error {
	now := q.now()
	q.mu.Lock()
	h := q.hops[identity]
	if h == nil {
		defer q.mu.Unlock()
		return q.missing(identity, ErrNoQueue)
	}
	h.dueNow(now)
	q.mu.Unlock()
	q.signal()
	return nil
}

// dueNow (q.mu held) ends h's retry wait and makes its messages due at
// now, out of schedule (retry.go).
func (h *NextHop) dueNow(now time.Time) {
	h.tryNow(now)
	for _, it := range h.items {
		for i := range it.m.Rcpts {
			if r := &it.m.Rcpts[i]; r.hop == h.Key && !r.Status.Final() {
				r.tryNow(now)
			}
		}
		h.put(it.m, now)
	}
}

// tryNow (q.mu held) ends h's retry wait out of schedule, keeping the
// retry it was waiting for (retry.go).
func (h *NextHop) tryNow(now time.Time) {
	if h.nextRetry.After(now) {
		h.retryDue = h.nextRetry
	}
	h.nextRetry = time.Time{}
}

// SuspendQueue stops delivery from the queue until ResumeQueue; messages
// keep arriving in it.
func (q *Queue) SuspendQueue(identity string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.hops[identity]
	if h == nil {
		return q.missing(identity, ErrNoQueue)
	}
	h.suspended = true
	return nil
}

// ResumeQueue ends a suspension.
func (q *Queue) ResumeQueue(identity string) error {
	q.mu.Lock()
	h := q.hops[identity]
	if h == nil {
		defer q.mu.Unlock()
		return q.missing(identity, ErrNoQueue)
	}
	h.suspended = false
	q.dropIfEmpty(h)
	q.mu.Unlock()
	q.signal()
	return nil
}

// Retried is what RetryMessage did besides making the message's waiting
// recipients due now, for the operator to be told.
type Retried struct {
	// InRetry are the message's queues that were in Retry: each tries
	// its next hop now, as after a queue retry, with its other messages
	// that are due.
	InRetry []string `json:"queues_in_retry,omitempty"`
	// Suspended are its queues an operator suspended: they stay so, and
	// nothing leaves them until a queue resume.
	Suspended []string `json:"queues_suspended,omitempty"`
	// Unreachable: recipients of it wait in the Unreachable queue, for a
	// send connector that serves their domain.
	Unreachable bool `json:"unreachable,omitempty"`
}

// RetryMessage makes a message's waiting recipients due now. A queue of
// the message in Retry tries its next hop now too: the message cannot
// leave before that, and an administrator retries a message precisely
// when it is stuck. Both are out of schedule (retry.go): a failure does
// not push the queue's or the recipients' next retry further out.
func (q *Queue) RetryMessage(id mail.ID) (Retried, error) {
	now := q.now()
	q.mu.Lock()
	m := q.msgs[id]
	if m == nil {
		defer q.mu.Unlock()
		return Retried{}, q.missing(string(id), ErrNoMessage)
	}
	for i := range m.Rcpts {
		if r := &m.Rcpts[i]; !r.Status.Final() && !r.leased {
			r.tryNow(now)
		}
	}
	q.schedule(m)
	var done Retried
	seen := map[string]bool{}
	for _, r := range m.Rcpts {
		h := q.hops[r.hop]
		if r.Status.Final() || h == nil || seen[h.Key] {
			continue
		}
		seen[h.Key] = true
		switch {
		case h.suspended:
			done.Suspended = append(done.Suspended, h.Key)
		case h.Key == route.Unreachable:
			done.Unreachable = true
		case now.Before(h.nextRetry):
			h.tryNow(now)
			done.InRetry = append(done.InRetry, h.Key)
		}
	}
	q.mu.Unlock()
	q.signal()
	return done, nil
}

// removedReply is what a bounce for a removed message says.
var removedReply = reply.Reply{Code: 550, Enhanced: [3]int{5, 3, 0}, Text: "message removed from the queue by an administrator"}

// RemoveMessage takes a message out of the queue, telling its sender with
// a DSN when bounce is set (Exchange's Remove-Message -WithNDR).
func (q *Queue) RemoveMessage(ctx context.Context, id mail.ID, bounce bool) error {
	ctx = context.WithoutCancel(ctx)
	m := q.message(id)
	if m == nil {
		return q.removePoisoned(ctx, id, bounce)
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	q.mu.Lock()
	var idx []int
	var rcpts []string
	for i := range m.Rcpts {
		r := &m.Rcpts[i]
		if r.leased {
			q.mu.Unlock()
			return ErrInFlight
		}
	}
	var lastErrors []string // to put back if the notice cannot be queued
	for i := range m.Rcpts {
		r := &m.Rcpts[i]
		if r.Status.Final() {
			continue
		}
		lastErrors = append(lastErrors, r.LastError)
		r.Status, r.LastError = StatusRemoved, removedReply.Error()
		idx = append(idx, i)
		rcpts = append(rcpts, r.Addr.String())
	}
	q.schedule(m)
	q.mu.Unlock()
	if bounce {
		if err := q.bounce(ctx, m, idx, false); err != nil {
			// The admin asked for the sender to be told: without the
			// notice, the message stays as it was.
			q.mu.Lock()
			for k, i := range idx {
				m.Rcpts[i].LastError = lastErrors[k]
			}
			q.keepQueued(m, idx, time.Time{})
			q.mu.Unlock()
			return fmt.Errorf("the non-delivery report could not be queued, so the message stays queued: %w", err)
		}
	}
	note := "removed without notice to the sender"
	if bounce {
		note = "removed; the sender gets a non-delivery report"
	}
	q.mu.Lock()
	q.trackAdmin(tracking.EventDelete, m, rcpts, note)
	q.mu.Unlock()
	q.persist(ctx, m)
	return nil
}

// RedirectMessage replaces a message's waiting recipients with to: it is
// routed again and delivered there instead (for a mailbox that moved, or
// to hand a stuck message to a postmaster).
func (q *Queue) RedirectMessage(ctx context.Context, id mail.ID, to []mail.Address) error {
	if len(to) == 0 {
		return fmt.Errorf("give at least one recipient to redirect to")
	}
	ctx = context.WithoutCancel(ctx)
	m := q.message(id)
	if m == nil {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.missing(string(id), ErrNoMessage)
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	q.mu.Lock()
	var old []string
	kept := m.Rcpts[:0:0]
	for _, r := range m.Rcpts {
		if r.leased {
			q.mu.Unlock()
			return ErrInFlight
		}
		if r.Status.Final() {
			kept = append(kept, r)
			continue
		}
		old = append(old, r.Addr.String())
	}
	if len(old) == 0 {
		q.mu.Unlock()
		return fmt.Errorf("message %s has no recipient left waiting", id)
	}
	for _, a := range to {
		kept = append(kept, Rcpt{Recipient: mail.Recipient{Addr: a}, Status: StatusQueued})
	}
	// Take the message out of its old queues before routing it again.
	for _, r := range m.Rcpts {
		if h := q.hops[r.hop]; h != nil && r.hop != "" {
			h.remove(m.ID)
			q.dropIfEmpty(h)
		}
	}
	m.Rcpts = kept
	q.schedule(m)
	var now []string
	for _, a := range to {
		now = append(now, a.String())
	}
	q.trackAdmin(tracking.EventRedirect, m, now, "redirected from "+fmt.Sprint(old))
	q.mu.Unlock()
	q.persist(ctx, m)
	q.signal()
	return nil
}
