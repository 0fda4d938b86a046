// Package logqueue owns the buffer between the goroutines that write a
// log (sessions, deliveries) and the one goroutine that writes its file:
// Put never blocks on the disk, and a record that finds the buffer full
// is dropped, not waited for. Unlike a buffered channel of the same
// bound, it holds memory only for what is waiting: the tracking and
// protocol logs' channels were 4 MiB of a relay's heap, full or not.
package logqueue

import (
	"sync"
	"time"
)

// Queue is a bounded FIFO of T for one reader.
type Queue[T any] struct {
	mu     sync.Mutex
	items  []T
	max    int
	closed bool
	ready  chan struct{} // holds a token while items wait or once closed
}

// New returns a queue that holds at most max items.
func New[T any](max int) *Queue[T] {
	return &Queue[T]{max: max, ready: make(chan struct{}, 1)}
}

// Put adds v, unless the queue is closed (v is dropped: the log is
// gone) or full (v is dropped and Put reports it, for the caller to
// say so).
func (q *Queue[T]) Put(v T) (full bool) {
	_, full = q.add(v, true)
	return full
}

// PutAlways adds v even to a full queue (a request someone waits on,
// that must not be dropped); false only once the queue is closed.
func (q *Queue[T]) PutAlways(v T) bool {
	added, _ := q.add(v, false)
	return added
}

func (q *Queue[T]) add(v T, bounded bool) (added, full bool) {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return false, false
	case bounded && len(q.items) >= q.max:
		q.mu.Unlock()
		return false, true
	}
	q.items = append(q.items, v)
	n := len(q.items)
	q.mu.Unlock()
	// A record waits for the reader's next tick: waking it for each one
	// cost a goroutine wake-up (often a thread's) per log line, on the
	// session's path. A request someone waits on, or a batch worth
	// writing, wakes it now.
	if !bounded || n == wakeAt {
		q.signal()
	}
	return true, false
}

// wakeAt is how many records wake the reader before its tick: under
// shrinkAbove, so a batch's buffer is kept for the next.
const wakeAt = shrinkAbove / 2

func (q *Queue[T]) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Ready has a value when a batch of records or a PutAlways item waits,
// or the queue was closed; fewer records wait for the reader to look
// (Serve: every interval).
func (q *Queue[T]) Ready() <-chan struct{} { return q.ready }

// Take returns what waits, giving buf (the slice the last Take
// returned, emptied) to hold what comes next; more is false once the
// queue is closed: what Take returned then was the last.
func (q *Queue[T]) Take(buf []T) (items []T, more bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(buf)
	if cap(buf) > shrinkAbove {
		buf = nil // a burst is over: let its memory go
	}
	items, q.items = q.items, buf[:0]
	return items, !q.closed
}

// shrinkAbove is the largest buffer kept from one Take to the next.
const shrinkAbove = 256

// Serve is the reader's loop: it hands each item to write, in order,
// when Ready says so and every interval, then calls flush (a log file's
// buffer goes to the disk even when little is written), until the queue
// is closed and empty.
func (q *Queue[T]) Serve(interval time.Duration, flush func(), write func(T)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var batch []T
	for more := true; more; {
		ticked := false
		select {
		case <-q.ready:
		case <-tick.C:
			ticked = true
		}
		batch, more = q.Take(batch)
		for _, v := range batch {
			write(v)
		}
		if ticked {
			flush()
		}
	}
}

// Close refuses further items; Take still returns those waiting.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// Losses counts the items a log dropped because its queue was full, so
// that the log says once that it is behind, not once per item (which
// would put a stalled log's whole volume into the operational log), and
// how many it lost once it has caught up.
type Losses struct {
	mu sync.Mutex
	n  int
}

// Add counts one dropped item; first reports that it is the first since
// the last Take, for the caller to log.
func (l *Losses) Add() (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	return l.n == 1
}

// Take returns how many items were dropped since the last Take, and
// starts counting again. The writer calls it after it has written what
// waited: the queue has room again.
func (l *Losses) Take() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.n
	l.n = 0
	return n
}
