package queue_test

import (
	"context"
	"testing"

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
			f.put(b, "app@contoso.com", "bob@contoso.com")
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
