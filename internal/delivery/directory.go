package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/dropdir"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/route"
)

// directorySession writes due messages as .eml files (Exchange's drop
// directory format: X-Sender, X-Receiver, then the message).
func (d *Deliverer) directorySession(s *run, hop route.Hop, l *queue.Lease) {
	path := hop.Connector.Directory
	dir, err := dropdir.Open(path)
	if err != nil {
		d.dirFailed(hop, l, "open", path, err)
		return
	}
	for n := 0; l != nil; n++ {
		outs, dirErr := d.writeFile(s.io, dir, l)
		if dirErr != nil {
			// The directory, not this message, failed: every message
			// would fail the same way, so the queue waits in Retry
			// like an SMTP hop that cannot be reached.
			d.dirFailed(hop, l, "write to", path, dirErr)
			return
		}
		if outs[0].Delivered {
			// A directory refuses no session: its limit stays
			// max_connections. Only a file written shows that it
			// works, so an unwritable one does not leave Retry at
			// each attempt only to go back.
			d.q.HopOK(hop.Key, 1)
		}
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

// dirFailed puts the hop in Retry for a directory Sluice cannot open or
// write to. That is Sluice's own side needing an admin (permissions, a
// disk), so it is logged at Error besides the queue's line.
func (d *Deliverer) dirFailed(hop route.Hop, l *queue.Lease, op, path string, err error) {
	r := dirReply(op, path, err)
	d.log.Error("cannot "+op+" drop directory", "queue", hop.Key, "dir", path, "err", err, "reply", r.Error())
	d.q.HopFailed(hop.Key, l, queue.Outcome{Reply: r})
}

// dirReply says what went wrong with a drop directory and what to change,
// without the internals (the temporary file's name, the package).
func dirReply(op, path string, err error) reply.Reply {
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		cause = le.Err
	}
	// Windows' texts end with a full stop ("Access is denied."), which
	// the advice after a semicolon would follow.
	what := fmt.Sprintf("cannot %s drop directory %s: %s", op, path, strings.TrimSuffix(cause.Error(), "."))
	switch {
	case errors.Is(err, reply.StoreFull) || errors.Is(cause, syscall.ENOSPC):
		return reply.Reply{Code: 452, Enhanced: [3]int{4, 3, 1},
			Text: fmt.Sprintf("cannot %s drop directory %s: its disk is full; free space there, or change the send connector's directory", op, path)}
	case errors.Is(err, fs.ErrPermission):
		what += fmt.Sprintf("; give %s write access to it, or change the send connector's directory", runsAs())
	case errors.Is(cause, syscall.EROFS):
		what += "; mount it read-write, or change the send connector's directory"
	case fileInTheWay(path):
		what += "; a file is in the way of the directory: move it, or change the send connector's directory"
	default:
		if advice := config.MissingPathAdvice(path, err); advice != "" {
			what += "; " + advice + ", or change the send connector's directory"
		} else {
			what += "; check the disk and the directory, or change the send connector's directory"
		}
	}
	return reply.Reply{Code: 451, Enhanced: [3]int{4, 3, 0}, Text: what}
}

// fileInTheWay reports whether path, or a directory above it, is a file
// (or a link to nothing) rather than a directory. It looks: the error
// does not say so, as on Windows syscall.ENOTDIR is ERROR_PATH_NOT_FOUND,
// which MkdirAll also returns for a drive the account cannot see.
func fileInTheWay(path string) bool {
	for d := filepath.Clean(path); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			fi, err := os.Stat(d)
			return err != nil || !fi.IsDir()
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}

// runsAs names the account Sluice runs as, for an admin to grant it access.
func runsAs() string {
	u, err := user.Current()
	switch {
	case err != nil && runtime.GOOS == "windows":
		return "the account Sluice runs as"
	case err != nil:
		return fmt.Sprintf("the user Sluice runs as (uid %d)", os.Getuid())
	case runtime.GOOS == "windows":
		return fmt.Sprintf("the account Sluice runs as (%s)", u.Username)
	}
	return fmt.Sprintf("the user Sluice runs as (%s, uid %s)", u.Username, u.Uid)
}

// writeFile writes l's message to dir and returns its recipients'
// outcomes, or, when the directory failed, that error and no outcomes.
func (d *Deliverer) writeFile(ctx context.Context, dir *dropdir.Dir, l *queue.Lease) ([]queue.Outcome, error) {
	out := queue.Outcome{Delivered: true, Reply: reply.Reply{Code: 250, Enhanced: [3]int{2, 0, 0}, Text: "written to " + dir.Path()},
		Host: "directory", Handoff: queue.HandoffDelivered}
	// A drop directory is the end of Sluice's road, final delivery for
	// DSN (RFC 3461 §5.2.3): what picks the files up sends no notices.
	if err := d.putFile(ctx, dir, l); err != nil {
		var de dirError
		if errors.As(err, &de) {
			return nil, de.err
		}
		out = queue.Outcome{Reply: reply.Reply{Code: 451, Enhanced: [3]int{4, 3, 0}, Text: err.Error()}}
	}
	return repeat(out, len(l.Rcpts)), nil
}

// dirError is a failure of the directory, as opposed to the queue's
// content: the hop's problem, not the message's.
type dirError struct{ err error }

func (e dirError) Error() string { return e.err.Error() }

// putFile writes l's message to dir; its error says which side failed,
// the queue's content or the directory (a dirError).
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
		return dirError{err}
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
