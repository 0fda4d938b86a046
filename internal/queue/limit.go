package queue

import "time"

// Session limits. Exchange and Microsoft 365 take only so many
// connections at once from one client and greet one more with "421
// 4.3.2 The maximum number of concurrent connections has exceeded a
// limit, closing transmission channel" (or refuse or drop it), often
// fewer than a send connector's max_connections. A session refused while
// others to the same hop are connected is that limit, not an outage:
// delivery reports it with HopBusy instead of HopFailed, and the hop gets
// no more sessions than were working. This is Postfix's destination
// concurrency feedback (SCHEDULER_README, "Concurrency scheduling"),
// with its dead-destination test (..._failed_cohort_limit) replaced by
// what delivery can see: a refusal while no other session works is a
// failure (HopFailed, Retry).
//
// Postfix lowers its window a step per connection or handshake failure
// (..._negative_feedback); we lower the limit straight to the sessions
// working, since that is how many the upstream has just shown it takes.
// The limit then rises by one for every raiseEvery without a refusal, up
// to max_connections.

// raiseEvery is how long a lowered session limit holds before it rises
// by one. Postfix raises its window as deliveries succeed
// (..._positive_feedback), which against a fixed per-client limit (what
// Exchange and Microsoft 365 have) opens a connection that is refused
// again every few messages on a busy hop. Once a minute costs at most
// one refused connection a minute (and only while mail waits for more
// sessions than the limit), and brings a limit lowered by a passing
// crowd (other clients behind the same address, another farm node) back
// to max_connections within as many minutes as it was lowered by. An
// admin who sees the limit hold sets max_connections to it, and the
// refusals stop.
const raiseEvery = time.Minute

// sessionLimit is a hop's session limit while it is below
// max_connections. It is kept apart from the NextHop, which is forgotten
// whenever its queue empties: the upstream's limit outlasts that.
type sessionLimit struct {
	n     int       // sessions at once as of since
	since time.Time // when n was set; n rises by one every raiseEvery from then
	max   int       // max_connections when last looked at, for Sweep
}

// at is the limit at now, for a connector with max_connections maxConns.
func (l *sessionLimit) at(now time.Time, maxConns int) int {
	n := l.n
	if d := now.Sub(l.since); d > 0 {
		n += int(min(d/raiseEvery, time.Duration(maxConns)))
	}
	return min(n, maxConns)
}

// sessions (q.mu held) is how many sessions the hop key, whose connector
// has max_connections maxConns, takes at now. A limit back at maxConns
// is forgotten; a reload that changed max_connections applies at once.
func (q *Queue) sessions(key string, maxConns int, now time.Time) int {
	l := q.limits[key]
	if l == nil {
		return maxConns
	}
	l.max = maxConns
	n := l.at(now, maxConns)
	if n >= maxConns {
		delete(q.limits, key)
	}
	return n
}

// HopBusy records that the next hop refused a session (a 421 at the
// greeting, EHLO, STARTTLS, AUTH or the first MAIL of a new connection,
// or a connection refused or dropped) while working other sessions to it
// were connected: the hop gets no more sessions at once than that for
// now (at least one), and the queue stays out of Retry. The lease goes
// back untouched: not counted as an attempt, no error recorded, due
// again at once for a session that works.
// HopBusy returns the hop's session limit now.
func (q *Queue) HopBusy(key string, l *Lease, working int) int {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.hops[key]
	if l != nil {
		if m := q.msgs[l.ID]; m != nil {
			for _, i := range l.Rcpts {
				m.Rcpts[i].leased = false
			}
			q.release(m, key)
		}
	}
	if h == nil || h.Connector == nil {
		return max(working, 1)
	}
	q.limits[key] = &sessionLimit{n: max(working, 1), since: now, max: h.Connector.MaxConnections}
	return q.sessions(key, h.Connector.MaxConnections, now)
}

// raiseLimit (q.mu held) raises the hop's session limit to connected,
// the sessions the upstream has just taken at once: a session refused
// while others were still connecting lowered it below that.
func (q *Queue) raiseLimit(key string, connected int, now time.Time) {
	if l := q.limits[key]; l != nil && l.at(now, connected) < connected {
		l.n, l.since = connected, now
	}
}

// forgetLimits (q.mu held) drops the limits of hops gone from the queue
// that are back at max_connections, so that a limit does not outlive its
// use for an MX hop whose domain gets no more mail.
func (q *Queue) forgetLimits(now time.Time) {
	for key, l := range q.limits {
		if q.hops[key] == nil && l.at(now, l.max) >= l.max {
			delete(q.limits, key)
		}
	}
}
