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
