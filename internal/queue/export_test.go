package queue

// Waiters counts the sessions waiting in Await for the hop.
func Waiters(q *Queue, key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.idle[key])
}
