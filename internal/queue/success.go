package queue

import (
	"context"
	"time"

	"github.com/sluice-relay/sluice/internal/dsn"
	"github.com/sluice-relay/sluice/internal/mail"
)

// successNotice is what a success notice says about recipient r,
// delivered with outcome o, and whether there is to be one: its sender
// asked (NOTIFY=SUCCESS, RFC 3461 §4.1) and Sluice is the last to know
// of the delivery (Handoff).
func successNotice(r *Rcpt, o Outcome, now time.Time) (dsn.Recipient, bool) {
	if r.Notify&mail.NotifySuccess == 0 || r.Notify&mail.NotifyNever != 0 || o.Handoff == HandoffDSN {
		return dsn.Recipient{}, false
	}
	d := dsn.Recipient{Final: r.Addr, Original: r.ORcpt, Action: dsn.ActionRelayed, LastAttempt: now}
	if o.Reply.Enhanced[0] == 2 {
		d.Status = o.Reply.Enhanced // else 2.0.0
	}
	if o.Handoff == HandoffDelivered {
		// A drop directory is no server, and its path is nothing for
		// the sender to know.
		d.Action = dsn.ActionDelivered
		return d, true
	}
	// RFC 3461 §6.3 (h), (i): the server that took it, and its reply.
	d.RemoteMTA, d.Diagnostic = o.Host, o.Reply.Error()
	return d, true
}

// notifySuccess sends m's sender one notice about recips, the recipients
// of one attempt that asked to hear of their delivery; a message from <>
// gets none (RFC 3461 §5.2).
//
// Unlike a bounce, a notice that cannot be queued (the disk below
// min_free_space) is logged and given up. Its recipients are delivered:
// keeping them queued until their notice can go would deliver the
// message again, a duplicate for each recipient, which is worse than a
// missing receipt; keeping the delivered message only to compose its
// notice later would hold the disk space that is short. The DSN tracking
// event is missing then too; the SEND event shows the delivery.
func (q *Queue) notifySuccess(ctx context.Context, m *Message, recips []dsn.Recipient) {
	if len(recips) == 0 || m.Env.From.IsNull() {
		return
	}
	if err := q.notify(ctx, m, recips, "success"); err != nil {
		q.log.Error("cannot queue success notice; the sender will not be told of the delivery",
			"msg", m.ID, "to", m.Env.From.String(), "rcpts", len(recips), "err", err)
	}
}
