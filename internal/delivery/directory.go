package delivery

import (
	"context"
	"fmt"
	"io"
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
	out := queue.Outcome{Delivered: true, Reply: reply.Reply{Code: 250, Enhanced: [3]int{2, 0, 0}, Text: "written to " + dir.Path()},
		Host: "directory", Handoff: queue.HandoffDelivered}
	// A drop directory is the end of Sluice's road, final delivery for
	// DSN (RFC 3461 §5.2.3): what picks the files up sends no notices.
	if err := d.putFile(ctx, dir, l); err != nil {
		out = queue.Outcome{Reply: reply.Reply{Code: 451, Enhanced: [3]int{4, 3, 0}, Text: err.Error()}}
	}
	return repeat(out, len(l.Rcpts))
}

// putFile writes l's message to dir; its error says which side failed,
// the queue's content or the directory.
func (d *Deliverer) putFile(ctx context.Context, dir *dropdir.Dir, l *queue.Lease) error {
	body, err := l.Body(ctx)
	if err != nil {
		return unreadable(err)
	}
	defer body.Close()
	src := &contentReader{r: body}
	env := l.Env
	if err := dir.Put(ctx, &env, src); err != nil {
		if src.err != nil {
			return unreadable(src.err)
		}
		return fmt.Errorf("cannot write to drop directory: %w", err)
	}
	return nil
}

// contentReader keeps the error reading a content from the queue, to
// tell it from one writing it out.
type contentReader struct {
	r   io.Reader
	err error
}

func (c *contentReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}
