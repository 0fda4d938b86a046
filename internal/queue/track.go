package queue

import (
	"sort"
	"strings"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// Tracking sources, as the tracking log names them.
const (
	sourceQueue    = "QUEUE"
	sourceDelivery = "DELIVERY"
)

// event starts a tracking record about m. A notice's records are related
// to the message it is about, so that a search finds the one from the
// other (and its DSN record, related to the notice, names it).
func event(ev tracking.EventType, source string, m *Message) tracking.Event {
	return tracking.Event{
		Event:     ev,
		Source:    source,
		ID:        m.ID,
		MessageID: m.Env.MessageID,
		Sender:    m.Env.From.String(),
		Size:      m.Size,
		Related:   m.Env.About,
	}
}

// trackSubmit records that m was queued, with the queues it went to.
func (q *Queue) trackSubmit(m *Message) {
	if q.tracking == nil {
		return
	}
	e := event(tracking.EventSubmit, sourceQueue, m)
	hops := map[string]bool{}
	for _, r := range m.Rcpts {
		e.Recipients = append(e.Recipients, r.Addr.String())
		hops[r.hop] = true
	}
	e.NextHop = joinKeys(hops)
	e.Connector = m.Env.Origin.Connector
	q.tracking.Record(e)
}

// trackOutcomes records what happened to each leased recipient: SEND,
// FAIL, DEFER or EXPIRE, with the upstream's reply and the session that
// got it.
func (q *Queue) trackOutcomes(m *Message, l *Lease, outs []Outcome) {
	if len(outs) > 0 && outs[0].Delivered {
		q.metrics.Delivered(connectorName(l), m.Size, q.now().Sub(m.Env.Received))
	}
	for j, i := range l.Rcpts {
		if j >= len(outs) {
			break
		}
		o, r := outs[j], m.Rcpts[i]
		ev, outcome := tracking.EventDefer, "deferred"
		switch {
		case o.Delivered:
			ev, outcome = tracking.EventSend, "sent"
		case r.Status == StatusFailed:
			ev, outcome = tracking.EventFail, "failed"
		case r.Status == StatusExpired:
			ev, outcome = tracking.EventExpire, "expired"
		}
		q.metrics.Outcome(connectorName(l), outcome)
		e := event(ev, sourceDelivery, m)
		e.Recipients = []string{r.Addr.String()}
		e.NextHop = l.Hop.Key
		if l.Hop.Connector != nil {
			e.Connector = l.Hop.Connector.Name
		}
		e.Host, e.Reply, e.Session = o.Host, o.Reply.Error(), o.Session
		q.tracking.Record(e)
	}
}

// trackHopFailed records a DEFER for leased recipients whose next hop
// could not be reached at all, with the session of the last try when it
// got as far as a connection.
func (q *Queue) trackHopFailed(m *Message, l *Lease, o Outcome) {
	if q.tracking == nil {
		return
	}
	e := event(tracking.EventDefer, sourceDelivery, m)
	for _, i := range l.Rcpts {
		e.Recipients = append(e.Recipients, m.Rcpts[i].Addr.String())
	}
	e.NextHop = l.Hop.Key
	if l.Hop.Connector != nil {
		e.Connector = l.Hop.Connector.Name
	}
	e.Host, e.Reply, e.Session = o.Host, o.Reply.Error(), o.Session
	q.tracking.Record(e)
}

// trackExpired records recipients that expired while waiting.
func (q *Queue) trackExpired(m *Message, idx []int) {
	if q.tracking == nil || len(idx) == 0 {
		return
	}
	e := event(tracking.EventExpire, sourceQueue, m)
	for _, i := range idx {
		e.Recipients = append(e.Recipients, m.Rcpts[i].Addr.String())
		e.Reply = m.Rcpts[i].LastError
	}
	q.tracking.Record(e)
}

// trackDSN records that a notice about m went to its sender as dsn.
func (q *Queue) trackDSN(m *Message, dsn mail.ID, rcpts []string, kind string) {
	if q.tracking == nil {
		return
	}
	e := event(tracking.EventDSN, sourceQueue, m)
	e.Recipients = rcpts
	e.Related = dsn
	e.Reply = kind
	q.tracking.Record(e)
}

// trackAdmin records an operator's action on m (DELETE, REDIRECT).
func (q *Queue) trackAdmin(ev tracking.EventType, m *Message, rcpts []string, note string) {
	if q.tracking == nil {
		return
	}
	e := event(ev, "ADMIN", m)
	e.Recipients = rcpts
	e.Reply = note
	q.tracking.Record(e)
}

func connectorName(l *Lease) string {
	if l.Hop.Connector != nil {
		return l.Hop.Connector.Name
	}
	return ""
}

func joinKeys(set map[string]bool) string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}
