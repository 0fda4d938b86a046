package queue

import (
	"time"

	"github.com/sluice-relay/sluice/internal/route"
)

// Defaults for recipients no send connector serves (the Unreachable queue).
const (
	defaultFirst  = time.Minute
	defaultMax    = time.Hour
	defaultExpire = 48 * time.Hour
	defaultDelay  = 4 * time.Hour
)

// backoff is the wait before attempt n+1: the connector's first retry
// interval, doubling each time, at most its max interval.
func (q *Queue) backoff(h route.Hop, attempts int) time.Duration {
	first, max := defaultFirst, defaultMax
	if h.Connector != nil {
		first, max = h.Connector.Retry.First.D(), h.Connector.Retry.MaxInterval.D()
	}
	d := first
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// An attempt out of schedule: an operator's queue retry or message
// retry, or a reload, tries a queue in Retry (or a deferred recipient)
// before its time, since the operator or the new config may have fixed
// what failed. When it fails again, that is no scheduled retry: counted,
// each reload (made for any reason) doubled a failing hop's wait, and
// five took it to max_interval, an hour it then waited after the hop came
// back. The schedule stays as it was, neither the retry count (or the
// recipient's attempts, which drive its backoff) nor the next retry
// moved. Postfix's flush (postqueue -f) cannot lengthen a wait either: its
// backoff is a deferred message's time in the queue, not its number of
// attempts (qmgr_active.c), and Exchange retries a queue at a fixed
// interval. The failure is recorded all the same: last error, last retry
// time, tracking DEFER, the log line (with out_of_schedule=true).

// outOfScheduleGap is the least wait after an attempt out of schedule
// failed, for one made just before its scheduled retry: not two
// attempts in a row.
const outOfScheduleGap = time.Minute

// afterOutOfSchedule is when to try again after an attempt made before
// due, its scheduled time, failed at now: at due still, but not before
// the first retry interval (at most outOfScheduleGap) has passed.
func (q *Queue) afterOutOfSchedule(h route.Hop, due, now time.Time) time.Time {
	t := now.Add(min(q.backoff(h, 1), outOfScheduleGap))
	if due.After(t) {
		return due
	}
	return t
}

// expired reports whether m has waited longer than the hop's lifetime.
func (q *Queue) expired(m *Message, h route.Hop, now time.Time) bool {
	expire := defaultExpire
	if h.Connector != nil {
		expire = h.Connector.Retry.Expire.D()
	}
	return now.Sub(m.Env.Received) >= expire
}

// delayNotice is how long a recipient waits before its sender is told.
func (q *Queue) delayNotice(h route.Hop) time.Duration {
	if h.Connector != nil {
		return h.Connector.Retry.DelayNotice.D()
	}
	return defaultDelay
}
