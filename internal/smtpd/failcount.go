package smtpd

import (
	"net/netip"
	"sync"
	"time"
)

// failCounter counts AUTH failures per client IP over a sliding window,
// shared by all sessions, so a client cannot reset the count by
// reconnecting.
type failCounter struct {
	window time.Duration
	mu     sync.Mutex
	fails  map[netip.Addr][]time.Time
}

func newFailCounter(window time.Duration) *failCounter {
	return &failCounter{window: window, fails: map[netip.Addr][]time.Time{}}
}

// add records a failure and returns the number within the window.
func (f *failCounter) add(ip netip.Addr, now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts := append(f.recent(ip, now), now)
	f.fails[ip] = ts
	if len(f.fails) > 10000 {
		for k := range f.fails {
			if len(f.recent(k, now)) == 0 {
				delete(f.fails, k)
			}
		}
	}
	return len(ts)
}

// count returns the failures within the window.
func (f *failCounter) count(ip netip.Addr, now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.recent(ip, now))
}

func (f *failCounter) recent(ip netip.Addr, now time.Time) []time.Time {
	ts := f.fails[ip]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > f.window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(f.fails, ip)
		return nil
	}
	f.fails[ip] = ts
	return ts
}

// reset forgets an IP's failures after a successful login.
func (f *failCounter) reset(ip netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.fails, ip)
}
