package queue

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"time"

	"github.com/sluice-relay/sluice/internal/dsn"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/route"
)

// maxBounceHeader bounds how much of the original header a bounce quotes.
const maxBounceHeader = 256 << 10

// bounce tells m's sender about recipients idx: that they failed (or
// expired), or with delayed set that they are still waiting. The notice is
// a new message from <> to the sender, Put (durable) before this returns;
// the error says it could not be queued (a full disk), and the caller
// keeps the recipients waiting so that a later pass tries again.
// A message from <> is never bounced (RFC 5321 §6.1), and each recipient's
// NOTIFY is honoured (RFC 3461 §4.1).
func (q *Queue) bounce(ctx context.Context, m *Message, idx []int, delayed bool) error {
	if len(idx) == 0 {
		return nil
	}
	if m.Env.From.IsNull() {
		if delayed {
			q.log.Info("not bouncing a message from <>", "msg", m.ID, "rcpts", len(idx))
			return nil
		}
		// A notice of Sluice's (About) that fails for good is the end of
		// the story: its recipient, the sender of the message it
		// reports on, never hears what became of that message. Other
		// mail from <> (a bounce or receipt a client relayed) is no
		// notice of ours.
		for _, i := range idx {
			r := m.Rcpts[i]
			if m.Env.About == "" {
				q.log.Warn("not bouncing a message from <>", "msg", m.ID, "to", r.Addr.String(), "err", r.LastError)
				continue
			}
			q.log.Error("notice cannot be delivered; its sender will not be told",
				"msg", m.ID, "about", string(m.Env.About), "sender", r.Addr.String(), "err", r.LastError)
		}
		return nil
	}
	q.mu.Lock()
	cfg := q.cfg
	var recips []dsn.Recipient
	for _, i := range idx {
		r := m.Rcpts[i]
		if !wantsNotice(r.Notify, delayed) {
			continue
		}
		d := dsn.Recipient{
			Final:       r.Addr,
			Original:    r.ORcpt,
			Action:      dsn.ActionFailed,
			LastAttempt: r.LastAttempt,
			Removed:     r.Status == StatusRemoved,
		}
		d.Status, d.RemoteMTA, d.Diagnostic = statusOf(r, delayed)
		if delayed {
			d.Action = dsn.ActionDelayed
			d.WillRetryUntil = m.Env.Received.Add(q.lifetime(route.Via(cfg, m.Env.Via, r.Addr)))
		}
		recips = append(recips, d)
	}
	q.mu.Unlock()
	kind := "failure"
	if delayed {
		kind = "delay"
	}
	if err := q.notify(ctx, m, recips, kind); err != nil {
		q.log.Error("cannot queue bounce; its recipients stay queued", "msg", m.ID, "err", err)
		return err
	}
	return nil
}

// notify composes a notice about recips (none: nothing to do) and queues
// it to m's sender: a new message from <>, durable when notify returns
// nil. kind ("failure", "delay", "success") names it in the logs. The
// error says the notice could not be queued; one that cannot be composed
// is logged and not retried, since trying again would not help.
func (q *Queue) notify(ctx context.Context, m *Message, recips []dsn.Recipient, kind string) error {
	if len(recips) == 0 {
		return nil
	}
	now := q.now()
	q.mu.Lock()
	hostname := q.cfg.Node.Hostname
	q.mu.Unlock()
	rep := &dsn.Report{
		ReportingMTA: hostname,
		ArrivalDate:  m.Env.Received,
		EnvID:        m.Env.EnvID,
		MessageID:    m.ID,
		From:         m.Env.From,
		Recipients:   recips,
		Return:       m.Env.Ret,
		OriginalSize: m.Size,
		// The global form only for a sender reachable over SMTPUTF8
		// alone; an ASCII one gets the plain form, which any next hop
		// takes (dsn.Compose).
		UTF8: !m.Env.From.IsASCII(),
	}
	original, err := q.original(ctx, m, rep.ReturnsFull())
	if err != nil {
		q.log.Error("cannot read the original message for its notice; sending the notice without it", "msg", m.ID, "kind", kind, "err", err)
	}
	rep.Original = original
	id := mail.NewID()
	body, err := dsn.Compose(rep, now, func() string { return string(id) })
	if err != nil {
		q.log.Error("cannot compose notice", "msg", m.ID, "kind", kind, "err", err)
		return nil // retrying would not help
	}
	env := &mail.Envelope{
		ID:        id,
		MessageID: dsn.MessageID(string(id), hostname), // tracking finds a notice by the id it carries
		From:      mail.Null,
		Rcpts:     []mail.Recipient{{Addr: m.Env.From, Notify: mail.NotifyNever}},
		Body:      mail.Body8BitMIME,
		SMTPUTF8:  rep.UTF8, // RFC 6533 §6: the global form needs it; the plain form is ASCII
		Received:  now,
		Origin:    mail.Origin{Connector: "(delivery status notification)"},
		About:     m.ID,
	}
	if err := q.Put(ctx, env, bytes.NewReader(body)); err != nil {
		return err
	}
	var about []string
	for _, r := range recips {
		about = append(about, r.Final.String())
	}
	q.trackDSN(m, id, about, kind+" notice to "+m.Env.From.String())
	q.log.Info("delivery status notification queued", "msg", m.ID, "dsn", id, "kind", kind, "to", m.Env.From.String(), "rcpts", len(recips))
	return nil
}

// keepQueued (q.mu held) puts recipients whose notice could not be
// queued back in the queue: final only once their bounce is durable. A
// next attempt no sooner than next (zero: as it was) fails or expires
// them again, and the sweep does, with a new bounce.
func (q *Queue) keepQueued(m *Message, idx []int, next time.Time) {
	for _, i := range idx {
		r := &m.Rcpts[i]
		r.Status = StatusQueued
		if r.NextAttempt.Before(next) {
			r.NextAttempt = next
		}
	}
	q.schedule(m)
}

// wantsNotice applies NOTIFY: unset means failures and delays (RFC 3461
// leaves delays to us; Exchange sends them).
func wantsNotice(n mail.Notify, delayed bool) bool {
	switch {
	case n == mail.NotifyDefault:
		return true
	case n&mail.NotifyNever != 0:
		return false
	case delayed:
		return n&mail.NotifyDelay != 0
	}
	return n&mail.NotifyFailure != 0
}

// statusOf gives the DSN status, remote MTA and diagnostic for a recipient.
func statusOf(r Rcpt, delayed bool) ([3]int, string, string) {
	status := [3]int{5, 0, 0}
	remote, diag := splitLastError(r.LastError)
	switch {
	case delayed:
		status = [3]int{4, 4, 7}
		if e := parseEnhanced(diag); e[0] == 4 {
			status = e
		}
	case r.Status == StatusExpired:
		status = [3]int{5, 4, 7} // RFC 3463: delivery time expired
	default:
		if e := parseEnhanced(diag); e[0] == 5 {
			status = e
		}
	}
	return status, remote, diag
}

// lifetime is how long a recipient routed by h may wait.
func (q *Queue) lifetime(h route.Hop) time.Duration {
	if h.Connector != nil {
		return h.Connector.Retry.Expire.D()
	}
	return defaultExpire
}

// original returns what a notice quotes: the whole message when full
// (dsn.Report.ReturnsFull: at most dsn.MaxReturn octets), else its header
// section, so that a large message is never read into memory for it.
func (q *Queue) original(ctx context.Context, m *Message, full bool) ([]byte, error) {
	rc, err := q.store.Body(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if full {
		return io.ReadAll(rc)
	}
	var out []byte
	br := bufio.NewReader(io.LimitReader(rc, maxBounceHeader))
	for {
		line, err := br.ReadBytes('\n')
		out = append(out, line...)
		if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
			return out, nil
		}
	}
}
