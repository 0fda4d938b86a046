package queue

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/route"
)

// sweepEvery is how often expiry and delay notices are checked.
const sweepEvery = 5 * time.Second

// Run expires messages that waited too long and sends delay notices, until
// ctx ends.
func (q *Queue) Run(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			q.Sweep(ctx)
		}
	}
}

// Sweep runs one expiry and delay-notice pass, and forgets the session
// limits of hops gone from the queue once they are back at
// max_connections.
func (q *Queue) Sweep(ctx context.Context) {
	// A shutdown stops the pass between messages; those not reached are
	// swept after the restart.
	stop := ctx
	ctx = context.WithoutCancel(ctx)
	now := q.now()
	var due []*Message
	q.mu.Lock()
	q.forgetLimits(now)
	for _, m := range q.msgs {
		if s := q.sweepDue(m, now); len(s.expired)+len(s.delays) > 0 {
			due = append(due, m)
		}
	}
	q.mu.Unlock()
	for _, m := range due {
		if stop.Err() != nil {
			break
		}
		q.sweep(ctx, m, now)
	}
}

// swept is what a sweep does to one message's recipients.
type swept struct {
	expired, delays []int
}

// sweepDue (q.mu held) finds the recipients of m that have waited too
// long, and those whose sender is to hear of the delay.
func (q *Queue) sweepDue(m *Message, now time.Time) swept {
	var s swept
	for i := range m.Rcpts {
		r := &m.Rcpts[i]
		if r.Status.Final() || r.leased {
			continue
		}
		h := route.Via(q.cfg, m.Env.Via, r.Addr)
		switch {
		case q.expired(m, h, now):
			s.expired = append(s.expired, i)
		case !r.DelayNotified && q.delayNotice(h) > 0 && now.Sub(m.Env.Received) >= q.delayNotice(h):
			s.delays = append(s.delays, i)
		}
	}
	return s
}

// sweep expires m's recipients that waited too long and sends the
// delay notices that are due. It holds m.writeMu from marking a
// recipient to saving the state, as Done does: a Done, remove or
// redirect saving m in between would make an expiry durable before its
// bounce is, and a crash or a shutdown then would lose the bounce (or,
// with every recipient final, the message with it).
func (q *Queue) sweep(ctx context.Context, m *Message, now time.Time) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	q.mu.Lock()
	if q.msgs[m.ID] != m {
		q.mu.Unlock()
		return // removed, or delivered to its end, since the pass began
	}
	s := q.sweepDue(m, now) // again: leases and outcomes since the pass began
	var queues []string     // of the expired recipients, for the log
	lastError := ""         // of the first expired recipient
	for _, i := range s.expired {
		r := &m.Rcpts[i]
		r.Status = StatusExpired
		if r.LastError == "" {
			r.LastError = q.hopError(r.hop)
		}
		if r.hop != "" && !slices.Contains(queues, r.hop) {
			queues = append(queues, r.hop)
		}
		if lastError == "" {
			lastError = r.LastError
		}
	}
	for _, i := range s.delays {
		m.Rcpts[i].DelayNotified = true
	}
	if len(s.expired) > 0 {
		q.schedule(m)
		q.trackExpired(m, s.expired)
	}
	q.mu.Unlock()
	if len(s.expired)+len(s.delays) == 0 {
		return
	}
	if len(s.expired) > 0 {
		q.log.Info("message expired", "msg", m.ID, "rcpts", len(s.expired),
			"queue", strings.Join(queues, ","), "last_error", lastError)
	}
	if err := q.bounce(ctx, m, s.expired, false); err != nil {
		q.mu.Lock()
		q.keepQueued(m, s.expired, time.Time{})
		q.mu.Unlock()
	}
	if err := q.bounce(ctx, m, s.delays, true); err != nil {
		q.mu.Lock()
		for _, i := range s.delays {
			m.Rcpts[i].DelayNotified = false
		}
		q.mu.Unlock()
	}
	q.persist(ctx, m)
}

// hopError is the last error of a queue, for recipients that expire
// without ever having had a reply of their own.
func (q *Queue) hopError(key string) string {
	if h := q.hops[key]; h != nil && h.lastError != "" {
		return h.lastError
	}
	if key == route.Unreachable {
		return "no send connector serves this recipient's domain"
	}
	return ""
}

// splitLastError separates "host said: reply" into its parts.
func splitLastError(s string) (host, diag string) {
	if h, rest, ok := strings.Cut(s, " said: "); ok {
		return h, rest
	}
	return "", s
}

// parseEnhanced finds the enhanced status code in "550 5.1.1 text".
func parseEnhanced(s string) [3]int {
	f := strings.Fields(s)
	if len(f) < 2 {
		return [3]int{}
	}
	p := strings.Split(f[1], ".")
	if len(p) != 3 {
		return [3]int{}
	}
	var e [3]int
	for i, x := range p {
		n, err := strconv.Atoi(x)
		if err != nil {
			return [3]int{}
		}
		e[i] = n
	}
	return e
}
