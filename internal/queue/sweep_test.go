package queue_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
)

// A shutdown that stops the sweep must not leave a recipient marked
// expired without its bounce: a delivery finishing in the grace period
// would save that state, and with every recipient final delete the
// message, and the sender would never hear of the expiry.
func TestSweepStoppedExpiresNothing(t *testing.T) {
	f := newFixture(t, "")
	env := f.put(t, "app@contoso.com", "bob@contoso.com", "carol@fabrikam.example")
	l := f.q.Lease("Exchange")
	if l == nil {
		t.Fatal("nothing leased for Exchange")
	}
	f.clock.Add(49 * time.Hour)
	stopped, cancel := context.WithCancel(context.Background())
	cancel() // SIGTERM during the pass
	f.q.Sweep(stopped)
	f.q.Done(context.Background(), l, []queue.Outcome{ok()}) // bob, within the grace period
	f.store.Close()
	f.open(t) // the restart

	m, found := f.q.Message(env.ID)
	if !found || len(m.Recipients) != 2 || m.Recipients[1].Status != queue.StatusQueued {
		t.Fatalf("after the restart the message is %+v (found %v), want carol still queued", m, found)
	}
	if b := f.bounces(t); len(b) != 0 {
		t.Fatalf("bounces before any sweep ran to carol: %+v", b)
	}
	f.q.Sweep(context.Background())
	if b := f.bounces(t); len(b) != 1 || b[0].Recipients[0].Final != "carol@fabrikam.example" {
		t.Fatalf("the sweep after the restart bounced %+v, want carol's expiry", b)
	}
}

// firstBodyBlocks holds the first Body call (the sweep reading the
// original for its bounce) until released.
type firstBodyBlocks struct {
	queue.Store
	once    sync.Once
	blocked chan mail.ID
	release chan struct{}
}

func (s *firstBodyBlocks) Body(ctx context.Context, id mail.ID) (io.ReadCloser, error) {
	s.once.Do(func() {
		s.blocked <- id
		<-s.release
	})
	return s.Store.Body(ctx, id)
}

// While the sweep bounces one message, a delivery finishing on another
// expired message must not make that message's expiry durable before its
// bounce: a crash at that moment would lose both.
func TestSweepExpiryNotSavedBeforeBounce(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	blocking := &firstBodyBlocks{Store: f.store, blocked: make(chan mail.ID), release: make(chan struct{})}
	q, err := queue.Open(ctx, queue.Options{Store: blocking, Config: f.cfg, Now: f.clock.Now,
		Log: slog.New(slog.NewTextHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.q = q
	a := f.put(t, "app@contoso.com", "bob@contoso.com", "carol@fabrikam.example")
	b := f.put(t, "app@contoso.com", "dave@contoso.com", "erin@fabrikam.example")
	leases := map[mail.ID]*queue.Lease{}
	for range 2 {
		l := q.Lease("Exchange")
		if l == nil {
			t.Fatal("nothing leased for Exchange")
		}
		leases[l.ID] = l
	}
	f.clock.Add(49 * time.Hour)
	swept := make(chan struct{})
	go func() { q.Sweep(ctx); close(swept) }()
	inSweep := <-blocking.blocked
	other := a.ID
	if inSweep == a.ID {
		other = b.ID
	}
	q.Done(ctx, leases[other], []queue.Outcome{ok()})

	// A crash now: what is durable?
	var stored []mail.ID
	if err := f.store.Load(ctx, func(id mail.ID, _ []byte, _ int64) error {
		stored = append(stored, id)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(stored, other) {
		t.Errorf("while the sweep bounced %s, %s was deleted with its expired recipient not bounced; stored: %v", inSweep, other, stored)
	}
	close(blocking.release)
	<-swept
	q.Done(ctx, leases[inSweep], []queue.Outcome{ok()})
	if got := f.bounces(t); len(got) != 2 {
		t.Fatalf("bounces %+v, want carol's and erin's", got)
	}
	if q.Len() != 2 {
		t.Errorf("%d messages left, want the two bounces only", q.Len())
	}
}
