package queue

// Waiters counts the sessions waiting in Await for the hop.
func Waiters(q *Queue, key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.idle[key])
}

// ResumeWakingOne ends the hop's suspension and wakes one waiting
// session, as scheduling a due message does, with before run first under
// the same lock: a test stops that session in between.
func ResumeWakingOne(q *Queue, key string, before func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	before()
	q.hops[key].suspended = false
	q.wakeOne(key)
}

// RaiseEvery is how long a lowered session limit holds before it rises.
const RaiseEvery = raiseEvery
