package queue_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
)

// BenchmarkPutLeaseDone is one message's life in the queue: Put (durable),
// leased by delivery, Done (delivered: deleted from the store). Parallel,
// like 20 sessions and deliveries at once.
func BenchmarkPutLeaseDone(b *testing.B) {
	f := newFixture(b, "")
	b.ReportAllocs()
	b.SetParallelism(10)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			// Not f.put: it calls Fatal, which must not run on
			// RunParallel's goroutines.
			env := &mail.Envelope{ID: mail.NewID(), From: "app@contoso.com", Received: f.clock.Now(),
				Rcpts: []mail.Recipient{{Addr: "bob@contoso.com"}}}
			if err := f.q.Put(context.Background(), env, strings.NewReader("Subject: test\r\n\r\nhello\r\n")); err != nil {
				b.Error(err)
				return
			}
			l := f.q.Lease("Exchange")
			if l == nil {
				continue // another goroutine took it; it will be Done there
			}
			f.q.Done(context.Background(), l, []queue.Outcome{ok()})
		}
	})
	b.StopTimer()
	for l := f.q.Lease("Exchange"); l != nil; l = f.q.Lease("Exchange") {
		f.q.Done(context.Background(), l, []queue.Outcome{ok()})
	}
}
