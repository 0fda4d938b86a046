package delivery

import (
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/route"
)

// hopSessions counts a next hop's sessions, so that a session that cannot
// connect can tell an upstream that takes no more connections from one
// that is down (see queue.HopBusy).
type hopSessions struct {
	started    int // running, as dispatch counts them against the hop's session limit
	connecting int // of them, opening a connection
	connected  int // of them, holding an open connection (sending or waiting for mail)
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

// dialed records that a session to hop connected, and tells the queue.
// The queue hears of connections and refusals under d.mu, so in the order
// the counts changed: a refusal counted before a session connected must
// not lower the limit after the connection raised it.
func (d *Deliverer) dialed(hop route.Hop) {
	d.mu.Lock()
	defer d.mu.Unlock()
	hs := d.hop(hop.Key)
	hs.connecting--
	hs.connected++
	hs.notify()
	d.q.HopOK(hop.Key, hs.connected)
}

// hungUp records that a session closed its connection to hop.
func (d *Deliverer) hungUp(hop route.Hop) {
	d.mu.Lock()
	hs := d.hop(hop.Key)
	hs.connected--
	hs.notify()
	d.mu.Unlock()
}

// notConnected settles lease l after a session could not connect to hop
// (o says why). If other sessions to the hop are connected, the upstream
// is up but takes no more connections from us (Microsoft 365's "421
// 4.3.2 The maximum number of concurrent connections has exceeded a
// limit"): the hop gets fewer sessions and the message goes on one that
// works. If none is, the hop is failing and its queue goes into retry.
// While others are still connecting it waits for them to find out which.
func (d *Deliverer) notConnected(s *run, hop route.Hop, l *queue.Lease, o queue.Outcome) {
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
	case working > 0:
		limit := d.q.HopBusy(hop.Key, l, working)
		d.mu.Unlock()
		d.log.Info("upstream refused one more connection; fewer sessions to this next hop",
			"queue", hop.Key, "host", o.Host, "reply", o.Reply.Error(), "working", working,
			"session_limit", limit, "max_connections", hop.Connector.MaxConnections)
	default:
		d.q.HopFailed(hop.Key, l, o) // logs it
		d.mu.Unlock()
	}
}
