package queue

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// dueUpTo counts what a full scan counts, up to its limit, for any mix
// of due and later items.
func TestDueUpTo(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, n := range []int{0, 1, 7, 100, 5000} {
		var h itemHeap
		due := 0
		for range n {
			d := now.Add(time.Duration(rand.IntN(120)-60) * time.Second)
			if !now.Before(d) {
				due++
			}
			heap.Push(&h, &item{m: &Message{Env: mail.Envelope{ID: mail.NewID()}}, due: d})
		}
		for _, limit := range []int{1, 20, 10000} {
			if got, want := h.dueUpTo(now, limit), min(due, limit); got != want {
				t.Errorf("%d items, %d due: dueUpTo(limit %d) = %d, want %d", n, due, limit, got, want)
			}
		}
	}
}
