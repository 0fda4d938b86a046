package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
)

// awaiting starts a session waiting in Await and returns what it gets.
func awaiting(f *fixture, ctx context.Context, idle time.Duration) <-chan *queue.Lease {
	c := make(chan *queue.Lease, 1)
	go func() { c <- f.q.Await(ctx, "Exchange", idle) }()
	return c
}

// waitWaiters waits until n sessions are waiting on the Exchange hop.
func waitWaiters(t *testing.T, f *fixture, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queue.Waiters(f.q, "Exchange") != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions waiting, want %d", queue.Waiters(f.q, "Exchange"), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// leased waits for what a session in Await returns; the deadline only
// guards against a hang.
func leased(t *testing.T, s <-chan *queue.Lease, what string) *queue.Lease {
	t.Helper()
	select {
	case l := <-s:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the session is still waiting", what)
		return nil
	}
}

// A message wakes one waiting session, the one that went idle last; the
// others keep waiting.
func TestAwaitWakesOneSession(t *testing.T) {
	f := newFixture(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sessions []<-chan *queue.Lease
	for i := range 4 {
		sessions = append(sessions, awaiting(f, ctx, time.Hour))
		waitWaiters(t, f, i+1)
	}
	for want := 3; want >= 2; want-- {
		env := f.put(t, "app@contoso.com", "bob@contoso.com")
		l := leased(t, sessions[want], "after one message")
		if l == nil || l.ID != env.ID {
			t.Fatalf("session %d got %+v, want the lease of %s", want, l, env.ID)
		}
		if n := queue.Waiters(f.q, "Exchange"); n != want {
			t.Fatalf("after one message, %d sessions waiting, want %d", n, want)
		}
		for i := range want {
			select {
			case l := <-sessions[i]:
				t.Fatalf("session %d woke too and got %+v", i, l)
			default:
			}
		}
	}
	// Two messages in one go wake both remaining sessions.
	ids := map[mail.ID]bool{}
	ids[f.put(t, "app@contoso.com", "bob@contoso.com").ID] = true
	ids[f.put(t, "app@contoso.com", "carol@contoso.com").ID] = true
	for i := range 2 {
		l := leased(t, sessions[i], "after two messages")
		if l == nil || !ids[l.ID] {
			t.Fatalf("session %d got %+v, want one of %v", i, l, ids)
		}
		delete(ids, l.ID)
	}
}

// A session stops waiting at its idle limit or when delivery stops, and
// leaves no trace behind.
func TestAwaitGivesUp(t *testing.T) {
	f := newFixture(t, "")
	if l := <-awaiting(f, context.Background(), 20*time.Millisecond); l != nil {
		t.Fatalf("idle session got %+v with nothing queued", l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := awaiting(f, ctx, time.Hour)
	waitWaiters(t, f, 1)
	cancel()
	if l := leased(t, s, "after its stop"); l != nil {
		t.Fatalf("stopped session got %+v", l)
	}
	if n := queue.Waiters(f.q, "Exchange"); n != 0 {
		t.Fatalf("%d sessions still listed as waiting", n)
	}
	// Mail queued before the session asks is leased without waiting.
	env := f.put(t, "app@contoso.com", "bob@contoso.com")
	if l := <-awaiting(f, context.Background(), time.Hour); l == nil || l.ID != env.ID {
		t.Fatalf("Await = %+v, want %s at once", l, env.ID)
	}
}

// An operator's Retry-Queue makes deferred mail due: the sessions
// waiting on the hop hear of it.
func TestAwaitWokenByRetryQueue(t *testing.T) {
	f := newFixture(t, "")
	env := f.put(t, "app@contoso.com", "bob@contoso.com")
	l := f.q.Lease("Exchange")
	f.q.Done(context.Background(), l, []queue.Outcome{fail("451 4.3.0 try later")})
	s := awaiting(f, context.Background(), time.Hour)
	waitWaiters(t, f, 1)
	if err := f.q.RetryQueue("Exchange"); err != nil {
		t.Fatal(err)
	}
	if l := leased(t, s, "after Retry-Queue"); l == nil || l.ID != env.ID {
		t.Fatalf("after Retry-Queue the waiting session got %+v, want %s", l, env.ID)
	}
}

// The dispatcher hears of a message only when no waiting session took
// it, or when it falls due later (its timer has to know).
func TestDispatcherWokenOnlyWhenNeeded(t *testing.T) {
	f := newFixture(t, "")
	woken := func() bool {
		select {
		case <-f.q.Wake():
			return true
		default:
			return false
		}
	}
	woken() // what opening the queue said
	s := awaiting(f, context.Background(), time.Hour)
	waitWaiters(t, f, 1)
	f.put(t, "app@contoso.com", "bob@contoso.com")
	l := leased(t, s, "after a message")
	if woken() {
		t.Error("the dispatcher was woken for a message a waiting session took")
	}
	f.q.Done(context.Background(), l, []queue.Outcome{fail("451 4.3.0 try later")})
	if !woken() {
		t.Error("the dispatcher did not hear of a message deferred to later")
	}
	f.put(t, "app@contoso.com", "carol@contoso.com")
	if !woken() {
		t.Error("the dispatcher did not hear of a message no session waited for")
	}
}

// A retry that falls due while a session waits on its hop goes on that
// session's connection: the dispatcher's timer runs Ready, which wakes
// it (the dispatcher counts it as busy and starts no other).
func TestAwaitWokenForARetryFallingDue(t *testing.T) {
	f := newFixture(t, "")
	env := f.put(t, "app@contoso.com", "bob@contoso.com")
	f.q.Done(context.Background(), f.q.Lease("Exchange"), []queue.Outcome{fail("451 4.3.0 try later")})
	s := awaiting(f, context.Background(), time.Hour)
	waitWaiters(t, f, 1)
	f.clock.Add(time.Hour)
	if work, _ := f.q.Ready(); len(work) != 1 {
		t.Fatalf("Ready = %+v, want the Exchange hop due", work)
	}
	if l := leased(t, s, "a retry fell due"); l == nil || l.ID != env.ID {
		t.Fatalf("waiting session got %+v, want %s", l, env.ID)
	}
}

// A session woken as delivery stops starts nothing, and its wake-up goes
// to the next waiting session: the message must not wait for one that
// left.
func TestAwaitStoppingPassesTheMessageOn(t *testing.T) {
	f := newFixture(t, "")
	env := f.put(t, "app@contoso.com", "bob@contoso.com")
	if err := f.q.SuspendQueue("Exchange"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := awaiting(f, ctx, time.Hour)
	waitWaiters(t, f, 1)
	stop, stopB := context.WithCancel(context.Background())
	b := awaiting(f, stop, time.Hour)
	waitWaiters(t, f, 2)
	// b is woken (it went idle last) with its stop already signalled.
	queue.ResumeWakingOne(f.q, "Exchange", stopB)
	if l := leased(t, b, "stopping"); l != nil {
		t.Fatalf("a stopping session leased %s", l.ID)
	}
	if l := leased(t, a, "the stopping session's wake-up was lost"); l == nil || l.ID != env.ID {
		t.Fatalf("the other session got %+v, want %s", l, env.ID)
	}
}
