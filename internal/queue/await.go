package queue

import (
	"context"
	"slices"
	"time"
)

// Delivery sessions holding an idle connection to a next hop wait here
// for its next message. A message that becomes due wakes one of them, not
// all: waking every session of every hop for each message costs sessions
// times hops wake-ups per message, nearly all for nothing (one hop with
// twenty connections at 3,000 messages a second: tens of thousands a
// second). The session woken is the one that went idle last, so the
// connections in use stay few and warm and the rest reach their idle
// limit and close, as with Postfix's connection cache. Mail that falls
// due with time (a retry) is found by the dispatcher's timer: Ready
// wakes a session waiting on its hop.

// Await leases the hop's next due message, waiting up to idle for one to
// become due. It returns nil when none did, or when ctx ends: then it
// starts nothing new, and a wake-up it took goes to another session.
func (q *Queue) Await(ctx context.Context, key string, idle time.Duration) *Lease {
	timer := time.NewTimer(idle)
	defer timer.Stop()
	w := make(chan struct{}, 1)
	woken, expired := false, false
	for {
		q.mu.Lock()
		if ctx.Err() != nil {
			if woken {
				q.passOn(key)
			}
			q.mu.Unlock()
			return nil
		}
		// Also at the idle limit: mail due by then goes on this
		// connection rather than wait for a new one.
		if l := q.lease(key, q.now()); l != nil || expired {
			q.mu.Unlock()
			return l
		}
		q.idle[key] = append(q.idle[key], w)
		q.mu.Unlock()
		woken = false
		select {
		case <-w:
			woken = true
		case <-timer.C:
			expired = true
		case <-ctx.Done():
		}
		if !woken {
			q.mu.Lock()
			woken = q.stopWaiting(key, w)
			q.mu.Unlock()
		}
	}
}

// stopWaiting (q.mu held) takes w off the hop's waiters, and reports
// whether a message had woken it meanwhile.
func (q *Queue) stopWaiting(key string, w chan struct{}) (woken bool) {
	ws := q.idle[key]
	for i, c := range ws {
		if c == w {
			q.setWaiters(key, slices.Delete(ws, i, i+1))
			return false
		}
	}
	<-w // off the list: a waker took it off and sent
	return true
}

// passOn (q.mu held) gives a wake-up a leaving session took to another
// waiting session, or to the dispatcher: otherwise the message would wait
// for a session that is gone.
func (q *Queue) passOn(key string) {
	if !q.wakeOne(key) {
		q.poke()
	}
}

// wakeOne (q.mu held) wakes the hop's waiter that went idle last, and
// reports whether there was one.
func (q *Queue) wakeOne(key string) bool {
	ws := q.idle[key]
	if len(ws) == 0 {
		return false
	}
	w := ws[len(ws)-1]
	q.setWaiters(key, ws[:len(ws)-1])
	w <- struct{}{} // never blocks: a waiter is listed once per wake-up
	return true
}

// wakeAll (q.mu held) wakes every waiter, after a change that may have
// made any hop's mail due (a config reload, an operator's retry).
func (q *Queue) wakeAll() {
	for key, ws := range q.idle {
		for _, w := range ws {
			w <- struct{}{}
		}
		delete(q.idle, key)
	}
}

func (q *Queue) setWaiters(key string, ws []chan struct{}) {
	if len(ws) == 0 {
		delete(q.idle, key)
		return
	}
	q.idle[key] = ws
}
