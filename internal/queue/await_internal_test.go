package queue

import "testing"

// A session leaving the hop's waiters learns whether a message woke it
// meanwhile; passOn gives such a wake-up to the session that went idle
// last before it, or to the dispatcher when there is none.
func TestStopWaitingAndPassOn(t *testing.T) {
	q := &Queue{idle: map[string][]chan struct{}{}, wake: make(chan struct{}, 1)}
	first, last := make(chan struct{}, 1), make(chan struct{}, 1)
	q.idle["hop"] = []chan struct{}{first, last}
	q.wakeOne("hop")
	if len(last) != 1 || len(first) != 0 {
		t.Fatalf("wakeOne woke first=%d last=%d, want the last to go idle", len(first), len(last))
	}
	if !q.stopWaiting("hop", last) || len(last) != 0 {
		t.Fatal("stopWaiting did not report (and take) the wake-up that came")
	}
	q.passOn("hop")
	if len(first) != 1 || len(q.idle["hop"]) != 0 {
		t.Fatalf("passOn: first woken %d, waiters left %d", len(first), len(q.idle["hop"]))
	}
	<-first
	q.passOn("hop")
	if len(q.wake) != 1 {
		t.Fatal("with no session waiting, passOn did not wake the dispatcher")
	}

	// One that leaves unwoken just goes off the list.
	q.idle["hop"] = []chan struct{}{first, last}
	if q.stopWaiting("hop", first) {
		t.Fatal("stopWaiting reported a wake-up that never came")
	}
	if got := q.idle["hop"]; len(got) != 1 || got[0] != last || len(last) != 0 {
		t.Fatalf("after an unwoken session left: waiters %v, last woken %d", got, len(last))
	}
}
