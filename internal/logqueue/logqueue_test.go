package logqueue

import (
	"sync"
	"testing"
	"time"
)

// drain takes everything until the queue reports closed, as a writer.
func drain[T any](q *Queue[T]) []T {
	var got, batch []T
	for more := true; more; {
		<-q.Ready()
		batch, more = q.Take(batch)
		got = append(got, batch...)
	}
	return got
}

func TestOrderBoundAndClose(t *testing.T) {
	q := New[int](3)
	for i := range 3 {
		if full := q.Put(i); full {
			t.Fatalf("Put %d reported full with room", i)
		}
	}
	if full := q.Put(3); !full {
		t.Error("Put into a full queue did not report it")
	}
	if !q.PutAlways(4) {
		t.Error("PutAlways refused on a full, open queue")
	}
	q.Close()
	if full := q.Put(5); full {
		t.Error("Put after Close reported full; it is dropped quietly")
	}
	if q.PutAlways(6) {
		t.Error("PutAlways accepted after Close")
	}
	got := drain(q)
	want := []int{0, 1, 2, 4}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// Many writers, one reader: each writer's items arrive, in its order,
// and nothing is lost while the queue has room.
func TestConcurrentWriters(t *testing.T) {
	const writers, each = 8, 2000
	q := New[[2]int](writers * each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if q.Put([2]int{w, i}) {
					t.Error("full")
					return
				}
			}
		}()
	}
	done := make(chan [][2]int)
	go func() { done <- drain(q) }()
	wg.Wait()
	q.Close()
	got := <-done
	next := make([]int, writers)
	for _, v := range got {
		if v[1] != next[v[0]] {
			t.Fatalf("writer %d: item %d after %d", v[0], v[1], next[v[0]]-1)
		}
		next[v[0]]++
	}
	if len(got) != writers*each {
		t.Errorf("%d items arrived, want %d", len(got), writers*each)
	}
}

// After a burst, the queue does not keep the burst's memory.
func TestShrinksAfterBurst(t *testing.T) {
	q := New[int](10000)
	for i := range 5000 {
		q.Put(i)
	}
	batch, _ := q.Take(nil)
	if len(batch) != 5000 {
		t.Fatalf("took %d", len(batch))
	}
	q.Put(1)
	q.Take(batch)
	q.mu.Lock()
	kept := cap(q.items)
	q.mu.Unlock()
	if kept > shrinkAbove {
		t.Errorf("after a burst of 5000 the queue keeps room for %d", kept)
	}
}

// Serve writes every item in order, flushes on its interval while idle,
// and returns once the queue is closed and everything is written.
func TestServe(t *testing.T) {
	q := New[int](100)
	flushed := make(chan struct{}, 1)
	var got []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Serve(time.Millisecond, func() {
			select {
			case flushed <- struct{}{}:
			default:
			}
		}, func(v int) { got = append(got, v) })
	}()
	for i := range 10 {
		q.Put(i)
	}
	<-flushed // idle: the interval's flush comes
	q.Put(10)
	q.Close()
	<-done
	if len(got) != 11 {
		t.Fatalf("wrote %v, want 0..10", got)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("wrote %v, want 0..10 in order", got)
		}
	}
}

// A record does not wake the reader by itself: a batch does, and so
// does an item someone waits on. Serve's tick writes what waits before
// it flushes, so a flush covers every record put before the tick.
func TestWakesForBatchesAndRequests(t *testing.T) {
	ready := func(q *Queue[int]) bool {
		select {
		case <-q.Ready():
			return true
		default:
			return false
		}
	}
	q := New[int](10 * wakeAt)
	for i := range wakeAt - 1 {
		q.Put(i)
	}
	if ready(q) {
		t.Fatalf("%d records woke the reader", wakeAt-1)
	}
	q.Put(wakeAt)
	if !ready(q) {
		t.Fatalf("%d records did not wake the reader", wakeAt)
	}
	q.Take(nil)
	q.Put(1)
	q.PutAlways(2)
	if !ready(q) {
		t.Fatal("PutAlways did not wake the reader")
	}

	q = New[int](100)
	flushedAt := make(chan int, 1)
	written := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Serve(time.Millisecond, func() {
			select {
			case flushedAt <- written:
			default:
			}
		}, func(int) { written++ })
	}()
	for i := range 5 {
		q.Put(i)
	}
	for n := 0; n != 5; {
		select {
		case n = <-flushedAt:
		case <-time.After(10 * time.Second):
			t.Fatalf("no flush with the 5 records written; the last flushed %d", n)
		}
	}
	q.Close()
	<-done
}

func TestLosses(t *testing.T) {
	var l Losses
	if got := []bool{l.Add(), l.Add(), l.Add()}; !got[0] || got[1] || got[2] {
		t.Errorf("Add = %v; want only the first to say so", got)
	}
	if n := l.Take(); n != 3 {
		t.Errorf("Take = %d; want 3", n)
	}
	if n := l.Take(); n != 0 {
		t.Errorf("Take after Take = %d; want 0", n)
	}
	if !l.Add() {
		t.Error("the first loss after a Take is not reported")
	}
}
