package smtpd

import (
	"net/netip"
	"sync"
	"time"
)

// failCounter counts AUTH failures per client IP over a sliding window,
// shared by all sessions, so a client cannot reset the count by
// reconnecting.
//
// Each failure keeps the login it was against, and a success forgets only
// that login's: a client that knows one password must not earn more
// guesses at another by logging in with it between them, while a user who
// mistypes and then gets it right does not lock out the others behind the
// same NAT.
//
// Passwords being checked count too (reserve): the check is slow on
// purpose, and sessions in parallel would otherwise all pass the limit
// before the first of their failures was recorded.
type failCounter struct {
	window time.Duration
	mu     sync.Mutex
	ended  *sync.Cond // an attempt ended: a reserve waiting may go on
	ips    map[netip.Addr]*ipFails
}

type ipFails struct {
	fails    []failure // oldest first
	checking int       // attempts reserved and not ended yet
}

type failure struct {
	at    time.Time
	login string // a configured user's login in lower case; "" for other names
}

func newFailCounter(window time.Duration) *failCounter {
	f := &failCounter{window: window, ips: map[netip.Addr]*ipFails{}}
	f.ended = sync.NewCond(&f.mu)
	return f
}

// count returns the failures within the window.
func (f *failCounter) count(ip netip.Addr, now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.recent(ip, now)
	f.forget(ip, e)
	return len(e.fails)
}

// reserve makes room for one password check from ip, and reports false
// if limit failures are already recorded. While the failures and the
// checks under way reach the limit, it waits for a check to end: each of
// them may be one more failure, and limit is how many passwords one IP may
// try. Waiting rather than refusing lets the right passwords of many
// sessions logging in at once all through. Every reserve that returns true
// is ended by exactly one fail, succeed or release.
func (f *failCounter) reserve(ip netip.Addr, now time.Time, limit int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		e := f.recent(ip, now)
		if len(e.fails) >= limit {
			f.forget(ip, e)
			return false
		}
		if len(e.fails)+e.checking < limit {
			e.checking++
			f.ips[ip] = e
			return true
		}
		f.ended.Wait()
	}
}

// fail ends a reserved check that failed, for login ("" for a name that is
// not a configured user's), and returns the failures within the window.
func (f *failCounter) fail(ip netip.Addr, login string, now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.recent(ip, now)
	e.checking--
	e.fails = append(e.fails, failure{at: now, login: login})
	f.ips[ip] = e
	f.ended.Broadcast()
	if len(f.ips) > 10000 {
		for k := range f.ips {
			f.forget(k, f.recent(k, now))
		}
	}
	return len(e.fails)
}

// succeed ends a reserved check that succeeded, and forgets the IP's
// failures against the same login; those against others stay.
func (f *failCounter) succeed(ip netip.Addr, login string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.recent(ip, now)
	e.checking--
	keep := e.fails[:0]
	for _, x := range e.fails {
		if x.login != login {
			keep = append(keep, x)
		}
	}
	e.fails = keep
	f.forget(ip, e)
	f.ended.Broadcast()
}

// release ends a reserved check that could not be made (the user database
// failed): neither a failure nor a success.
func (f *failCounter) release(ip netip.Addr, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.recent(ip, now)
	e.checking--
	f.forget(ip, e)
	f.ended.Broadcast()
}

// recent returns ip's entry (a new one if it has none) with the failures
// older than the window dropped.
func (f *failCounter) recent(ip netip.Addr, now time.Time) *ipFails {
	e := f.ips[ip]
	if e == nil {
		return &ipFails{}
	}
	i := 0
	for i < len(e.fails) && now.Sub(e.fails[i].at) > f.window {
		i++
	}
	e.fails = e.fails[i:]
	return e
}

// forget drops ip's entry once nothing is left in it, or keeps it.
func (f *failCounter) forget(ip netip.Addr, e *ipFails) {
	if len(e.fails) == 0 && e.checking == 0 {
		delete(f.ips, ip)
		return
	}
	f.ips[ip] = e
}
