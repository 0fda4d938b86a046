package delivery

import (
	"context"
	"strings"

	"github.com/sluice-relay/sluice/internal/dropdir"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/route"
)

// directorySession writes due messages as .eml files (Exchange's drop
// directory format: X-Sender, X-Receiver, then the message).
func (d *Deliverer) directorySession(s *run, hop route.Hop, l *queue.Lease) {
	dir, err := dropdir.Open(hop.Connector.Directory)
	if err != nil {
		d.q.HopFailed(hop.Key, l, queue.Outcome{Reply: reply.Reply{Code: 451, Enhanced: [3]int{4, 3, 0},
			Text: "cannot open drop directory: " + err.Error()}})
		return
	}
	d.q.HopOK(hop.Key, 1) // a directory refuses no session: its limit stays max_connections
	for n := 0; l != nil; n++ {
		outs := d.writeFile(s.io, dir, l)
		d.q.Done(s.io, l, outs)
		var to []string
		for _, r := range l.Env.Rcpts {
			to = append(to, r.Addr.String())
		}
		if outs[0].Delivered {
			d.log.Info("message delivered", "msg", l.ID, "queue", hop.Key, "rcpts", len(to), "to", strings.Join(to, ","), "path", dir.Path())
		} else {
			d.log.Warn("delivery deferred", "msg", l.ID, "queue", hop.Key, "rcpts", len(to), "to", strings.Join(to, ","), "reply", outs[0].Reply.Error())
		}
		if s.stopping() {
			return
		}
		l = d.q.Lease(hop.Key)
	}
}

func (d *Deliverer) writeFile(ctx context.Context, dir *dropdir.Dir, l *queue.Lease) []queue.Outcome {
	outs := make([]queue.Outcome, len(l.Rcpts))
	body, err := l.Body(ctx)
	if err == nil {
		env := l.Env
		err = dir.Put(ctx, &env, body)
		body.Close()
	}
	for i := range outs {
		if err != nil {
			outs[i] = queue.Outcome{Reply: reply.Reply{Code: 451, Enhanced: [3]int{4, 3, 0}, Text: "cannot write to drop directory: " + err.Error()}}
		} else {
			// A drop directory is the end of Sluice's road, final
			// delivery for DSN (RFC 3461 §5.2.3): what picks the files
			// up sends no notices.
			outs[i] = queue.Outcome{Delivered: true, Reply: reply.Reply{Code: 250, Enhanced: [3]int{2, 0, 0}, Text: "written to " + dir.Path()},
				Host: "directory", Handoff: queue.HandoffDelivered}
		}
	}
	return outs
}
