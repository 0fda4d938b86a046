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
	// A message's bounce and its saved state go together, shutdown or
	// not (as in Done): a bounce queued while the state is not saved
	// would go out again after a restart. A shutdown stops the pass
	// between messages; those not reached are swept after the restart.
	stop := ctx
	ctx = context.WithoutCancel(ctx)
	now := q.now()
	type todo struct {
		m               *Message
		expired, delays []int
		queues          []string // of the expired recipients, for the log
		lastError       string   // of the first expired recipient
	}
	var work []todo
	q.mu.Lock()
	q.forgetLimits(now)
	for _, m := range q.msgs {
		var t todo
		for i := range m.Rcpts {
			r := &m.Rcpts[i]
			if r.Status.Final() || r.leased {
				continue
			}
			h := route.Via(q.cfg, m.Env.Via, r.Addr)
			switch {
			case q.expired(m, h, now):
				r.Status = StatusExpired
				if r.LastError == "" {
					r.LastError = q.hopError(r.hop)
				}
				t.expired = append(t.expired, i)
				if r.hop != "" && !slices.Contains(t.queues, r.hop) {
					t.queues = append(t.queues, r.hop)
				}
				if t.lastError == "" {
					t.lastError = r.LastError
				}
			case !r.DelayNotified && q.delayNotice(h) > 0 && now.Sub(m.Env.Received) >= q.delayNotice(h):
				r.DelayNotified = true
				t.delays = append(t.delays, i)
			}
		}
		if len(t.expired)+len(t.delays) > 0 {
			t.m = m
			work = append(work, t)
			if len(t.expired) > 0 {
				q.schedule(m)
			}
		}
	}
	q.mu.Unlock()
	for _, t := range work {
		if stop.Err() != nil {
			break
		}
		t.m.writeMu.Lock()
		if len(t.expired) > 0 {
			q.log.Info("message expired", "msg", t.m.ID, "rcpts", len(t.expired),
				"queue", strings.Join(t.queues, ","), "last_error", t.lastError)
			q.mu.Lock()
			q.trackExpired(t.m, t.expired)
			q.mu.Unlock()
		}
		if err := q.bounce(ctx, t.m, t.expired, false); err != nil {
			q.mu.Lock()
			q.keepQueued(t.m, t.expired, time.Time{})
			q.mu.Unlock()
		}
		if err := q.bounce(ctx, t.m, t.delays, true); err != nil {
			q.mu.Lock()
			for _, i := range t.delays {
				t.m.Rcpts[i].DelayNotified = false
			}
			q.mu.Unlock()
		}
		q.persist(ctx, t.m)
		t.m.writeMu.Unlock()
	}
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
