package queue

import "testing"

// A session that gives up after a message woke it hands the wake-up to
// the next one: otherwise the message waits for a session that left.
func TestStopWaitingPassesTheWakeUpOn(t *testing.T) {
	q := &Queue{idle: map[string][]chan struct{}{}}
	first, last := make(chan struct{}, 1), make(chan struct{}, 1)
	q.idle["hop"] = []chan struct{}{first, last}
	q.wakeOne("hop")
	if len(last) != 1 || len(first) != 0 {
		t.Fatalf("wakeOne woke first=%d last=%d, want the last to go idle", len(first), len(last))
	}
	q.stopWaiting("hop", last)
	if len(first) != 1 {
		t.Fatal("the wake-up of a session that gave up was lost")
	}
	if n := len(q.idle["hop"]); n != 0 {
		t.Fatalf("%d waiters left, want none", n)
	}

	// One that gives up unwoken just leaves the list.
	q.idle["hop"] = []chan struct{}{first, last}
	<-first
	q.stopWaiting("hop", first)
	if got := q.idle["hop"]; len(got) != 1 || got[0] != last || len(last) != 0 {
		t.Fatalf("after an unwoken session left: waiters %v, last woken %d", got, len(last))
	}
}
