package delivery

import (
	"time"

	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/route"
)

// hopSessions counts a next hop's sessions, so that a session that cannot
// connect can tell an upstream that takes no more connections from one
// that is down (see queue.HopBusy). A session is connecting until the
// upstream answered the first message on its connection: one that counts
// connections only once AUTH has named the mailbox refuses one too many
// with 421 to MAIL, not at the greeting, and a session that may yet be
// refused so is not one that works.
type hopSessions struct {
	started    int // running, as dispatch counts them against the hop's session limit
	connecting int // of them, opening a connection, up to the reply to its first message
	connected  int // of them, holding a connection the upstream took (sending or waiting for mail)
	// closed is when a connection to the hop last closed, until a
	// refusal is put down to it (see notConnected).
	closed time.Time
	// changed, when a session waits on it, is closed when connecting or
	// connected change.
	changed chan struct{}
}

// hop (d.mu held) returns the hop's session counts.
func (d *Deliverer) hop(key string) *hopSessions {
	hs := d.active[key]
	if hs == nil {
		hs = &hopSessions{}
		d.active[key] = hs
	}
	return hs
}

func (hs *hopSessions) notify() {
	if hs.changed != nil {
		close(hs.changed)
		hs.changed = nil
	}
}

// dialing records that a session to hop is opening a connection.
func (d *Deliverer) dialing(hop route.Hop) {
	d.mu.Lock()
	d.hop(hop.Key).connecting++
	d.mu.Unlock()
}

// took records that the upstream took a session to hop (it answered the
// first message on the connection), and tells the queue. The queue hears
// of connections and refusals under d.mu, so in the order the counts
// changed: a refusal counted before a session connected must not lower
// the limit after the connection raised it.
func (d *Deliverer) took(hop route.Hop) {
	d.mu.Lock()
	defer d.mu.Unlock()
	hs := d.hop(hop.Key)
	hs.connecting--
	hs.connected++
	hs.notify()
	d.q.HopOK(hop.Key, hs.connected)
}

// hungUp records that a session closed its connection to hop: one the
// upstream took, or (when the session ends before its first message) one
// still counted as connecting.
func (d *Deliverer) hungUp(hop route.Hop, taken bool) {
	d.mu.Lock()
	hs := d.hop(hop.Key)
	if taken {
		hs.connected--
	} else {
		hs.connecting--
	}
	hs.closed = time.Now()
	hs.notify()
	d.mu.Unlock()
}

// A connection of ours to a hop that closed a moment ago may still count
// at the upstream: it learns of the close after our QUIT, and the next
// session connects at once. An upstream that takes one connection at a
// time refuses that session although nothing is wrong. So a refusal
// within closedLately of a close, while no other session is connected,
// is tried again once after closedPause, before it can put the queue
// into Retry. closedLately leaves time for a connection, TLS and AUTH,
// not for a connect timeout; closedPause is long for a server to see a
// close, and short next to the retry interval (a minute at least) it
// saves.
const (
	closedLately = 5 * time.Second
	closedPause  = time.Second
)

// closedRecently reports whether a connection to the hop closed within
// closedLately of now, and no refusal was put down to it yet.
func (hs *hopSessions) closedRecently(now time.Time) bool {
	return !hs.closed.IsZero() && now.Sub(hs.closed) < closedLately
}

// forget (d.mu held) drops the hop's counts once no session runs and no
// recent close is to be remembered.
func (d *Deliverer) forget(key string, now time.Time) {
	if hs := d.active[key]; hs != nil && hs.started <= 0 && !hs.closedRecently(now) {
		delete(d.active, key)
	}
}

// notConnected settles lease l after a session could not connect to hop
// (o says why; atMail: it is the 421 that answered l's MAIL on a new
// connection), or reports that the session is to try again. If other
// sessions to the hop are connected, the upstream is up but takes no
// more connections from us (Microsoft 365's "421 4.3.2 The maximum
// number of concurrent connections has exceeded a limit"): the hop gets
// fewer sessions and the message goes on one that works. If none is but
// one closed a moment ago, the session waits closedPause and tries again,
// once. Otherwise the hop is failing and its queue goes into retry.
// While others are still connecting it waits for them to find out which.
func (d *Deliverer) notConnected(s *run, hop route.Hop, l *queue.Lease, o queue.Outcome, atMail bool) (again bool) {
	d.mu.Lock()
	hs := d.hop(hop.Key)
	hs.connecting--
	hs.notify()
	for hs.connected == 0 && hs.connecting > 0 && !s.stopping() {
		if hs.changed == nil {
			hs.changed = make(chan struct{})
		}
		changed := hs.changed
		d.mu.Unlock()
		select {
		case <-changed:
		case <-s.stop.Done():
		}
		d.mu.Lock()
	}
	working := hs.connected
	switch {
	case s.stopping():
		d.mu.Unlock()
		d.q.Done(s.io, l, nil) // shutting down: not attempted
	case working > 0 && mayBeBusy(o):
		limit := d.q.HopBusy(hop.Key, l, working)
		d.mu.Unlock()
		d.log.Info("upstream refused one more connection; fewer sessions to this next hop",
			"queue", hop.Key, "host", o.Host, "session", o.Session, "reply", o.Reply.Error(), "working", working,
			"session_limit", limit, "max_connections", hop.Connector.MaxConnections)
	case hs.closedRecently(time.Now()):
		// Still connecting, to others refused meanwhile: they wait for
		// this session's second try to tell busy from failing.
		hs.closed = time.Time{}
		hs.connecting++
		d.mu.Unlock()
		d.log.Info("upstream refused a connection just after one closed; trying again in a moment",
			"queue", hop.Key, "host", o.Host, "session", o.Session, "reply", o.Reply.Error())
		t := time.NewTimer(closedPause)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.stop.Done(): // connecting fails at once, and the lease goes back above
		}
		return true
	case atMail:
		settled := d.q.HopRefusedAtMail(hop.Key, l, o) // logs it
		d.mu.Unlock()
		if !settled {
			d.q.Done(s.io, l, repeat(o, len(l.Rcpts)))
		}
	default:
		d.q.HopFailed(hop.Key, l, o) // logs it
		d.mu.Unlock()
	}
	return false
}

// mayBeBusy reports whether a failure to connect can be an upstream's
// limit on connections: a connection refused, reset or lost, or a
// temporary reply (421 4.3.2, 450 4.7.1 "too many connections"). A 5xx
// the upstream gave (554 at the greeting, 535 after a password change)
// refuses this client, however many of its sessions still work.
func mayBeBusy(o queue.Outcome) bool {
	return o.Host == "" || o.Reply.Code/100 != 5
}
