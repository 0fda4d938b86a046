package queue

import (
	"container/heap"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/route"
)

// NextHop is one queue: the messages waiting for one next hop.
type NextHop struct {
	route.Hop
	items   map[mail.ID]*item
	waiting itemHeap // items not leased, by due time
	leased  int

	suspended  bool
	lastError  string    // the hop's own last failure (connection level)
	retryCount int       // connection-level failures in a row
	lastRetry  time.Time // last connection-level failure
	nextRetry  time.Time // no attempts before this
	// retryDue is the retry an attempt out of schedule (tryNow) was
	// made before: a failure of that attempt keeps it (HopFailed).
	retryDue time.Time
	// offSchedule: the retry wait now running began with an attempt out
	// of schedule that failed, so the sessions of that attempt failing
	// too leave their messages as they were (HopRefusedAtMail).
	offSchedule bool
}

// item is one message's recipients for one next hop.
type item struct {
	m      *Message
	due    time.Time
	leased bool
	index  int // in the heap, -1 when not in it
}

func newHop(h route.Hop) *NextHop {
	return &NextHop{Hop: h, items: map[mail.ID]*item{}}
}

// put adds the message to the hop, or moves it to its new due time.
func (h *NextHop) put(m *Message, due time.Time) {
	it := h.items[m.ID]
	if it == nil {
		it = &item{m: m, index: -1}
		h.items[m.ID] = it
	}
	it.due = due
	if it.leased {
		return
	}
	if it.index >= 0 {
		heap.Fix(&h.waiting, it.index)
	} else {
		heap.Push(&h.waiting, it)
	}
}

// remove takes the message out of the hop.
func (h *NextHop) remove(id mail.ID) {
	it := h.items[id]
	if it == nil {
		return
	}
	if it.index >= 0 {
		heap.Remove(&h.waiting, it.index)
	}
	if it.leased {
		h.leased--
	}
	delete(h.items, id)
}

// due reports whether the hop has an item to deliver now.
func (h *NextHop) due(now time.Time) bool {
	return !h.suspended && !now.Before(h.nextRetry) && h.waiting.Len() > 0 && !now.Before(h.waiting[0].due)
}

// nextDue is when the hop will next have work, zero if never.
func (h *NextHop) nextDue() time.Time {
	if h.suspended || h.waiting.Len() == 0 {
		return time.Time{}
	}
	t := h.waiting[0].due
	if h.nextRetry.After(t) {
		t = h.nextRetry
	}
	return t
}

// itemHeap orders items by due time, then by message id (acceptance order).
type itemHeap []*item

// dueUpTo counts the items due at now, stopping at limit. Below an item
// not yet due nothing is due (heap order), so it looks at about twice
// as many items as it counts, whatever the heap holds.
func (h itemHeap) dueUpTo(now time.Time, limit int) int {
	n := 0
	stack := []int{0}
	for len(stack) > 0 && n < limit {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(h) || now.Before(h[i].due) {
			continue
		}
		n++
		stack = append(stack, 2*i+1, 2*i+2)
	}
	return n
}

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].m.ID < h[j].m.ID
}
func (h itemHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *itemHeap) Push(x any) {
	it := x.(*item)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.index = -1
	return it
}
