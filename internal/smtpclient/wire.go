package smtpclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/reply"
)

// RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets, but real servers
// write longer ones (Microsoft's 5.7.139 text, banners); accept up to 8K.
// A reply of more lines than this is not a server talking SMTP.
const (
	maxReplyLine  = 8192
	maxReplyLines = 1000
)

var (
	errClosed       = errors.New("smtpclient: connection closed")
	errLineTooLong  = errors.New("reply line too long")
	errMalformed    = errors.New("malformed reply")
	errCodeMismatch = errors.New("reply lines with different codes")
	errUnasked      = errors.New("the server sent a reply to no command")
)

// connWriter writes to the connection with a deadline per write: the
// command timeout, or while the message goes out the data block timeout
// (RFC 5321 §4.5.3.2.5).
type connWriter struct{ c *Client }

func (w connWriter) Write(p []byte) (int, error) {
	w.c.raw.SetWriteDeadline(time.Now().Add(w.c.writeLimit))
	n, err := w.c.conn.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Which limit ran out, for the queue's last error.
		err = fmt.Errorf("could not send within %v: %w", w.c.writeLimit, err)
	}
	return n, err
}

// usable says why the connection cannot be used, or nil.
func (c *Client) usable() error {
	if c.broken != nil {
		return fmt.Errorf("smtpclient: connection unusable: %w", c.broken)
	}
	if c.closed.Load() {
		return errClosed
	}
	return nil
}

// fail records why the connection is unusable, closes it and returns err.
func (c *Client) fail(err error) error {
	if c.broken == nil {
		c.broken = err
	}
	c.raw.Close()
	return err
}

// watch closes the connection when ctx ends during a call. The function it
// returns ends the watch; if ctx ended, it replaces *errp with the
// context's error, as the connection is closed whatever the call did.
func (c *Client) watch(ctx context.Context, what string) func(errp *error) {
	if ctx.Done() == nil {
		return func(*error) {}
	}
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	return func(errp *error) {
		if stop() {
			return
		}
		err := fmt.Errorf("smtpclient: %s: %w", what, context.Cause(ctx))
		c.broken = err
		*errp = err
	}
}

// flush sends what is buffered.
func (c *Client) flush(cmd string) error {
	if err := c.w.Flush(); err != nil {
		return c.fail(fmt.Errorf("smtpclient: %s: %w", cmd, err))
	}
	return nil
}

// cmd sends one line and reads the reply to it.
func (c *Client) cmd(cmd string, timeout time.Duration, line, mask string) (reply.Reply, error) {
	if err := c.unasked(cmd); err != nil {
		return reply.Reply{}, err
	}
	c.writeLimit = timeout
	c.writeLine(line, mask)
	if err := c.flush(cmd); err != nil {
		return reply.Reply{}, err
	}
	return c.readReply(cmd, timeout)
}

// unasked fails the connection if the server sent something before cmd
// (or the group of commands starting with it) goes out: a second reply to
// one command, a banner of several "220 " lines. Every later reply would
// be taken for the next command's — with PIPELINING one recipient's
// refusal for another's. Only what has arrived with earlier replies can
// be seen here, which is how such servers send it.
func (c *Client) unasked(cmd string) error {
	n := c.r.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := c.r.Peek(n)
	line, _, _ := strings.Cut(string(b), "\n")
	return c.fail(fmt.Errorf("smtpclient: %s: %w: %q", cmd, errUnasked, strings.TrimSuffix(line, "\r")))
}

// readReply reads the reply to cmd, waiting at most timeout. A 421 is
// returned as an *Error and closes the connection: the server is closing
// its end (RFC 5321 §3.8).
func (c *Client) readReply(cmd string, timeout time.Duration) (reply.Reply, error) {
	c.raw.SetReadDeadline(time.Now().Add(timeout))
	r, err := readReply(c.r, func(l string) { c.trace('<', l) })
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("no reply within %v: %w", timeout, err)
	}
	if err != nil {
		return reply.Reply{}, c.fail(&ConnError{Command: cmd, Err: err})
	}
	if r.Code == 421 {
		return r, c.fail(&Error{Command: cmd, Reply: r})
	}
	return r, nil
}

// readReply reads one reply, possibly of several lines (RFC 5321 §4.2.1):
// "250-first", "250-second", "250 last". The lines' texts are joined with
// "\n" and parsed with reply.Parse, which keeps the words as they were.
func readReply(r *bufio.Reader, trace func(string)) (reply.Reply, error) {
	code := 0
	var texts []string
	for {
		line, err := readLine(r)
		if err != nil {
			return reply.Reply{}, err
		}
		trace(line)
		n, more, text, ok := parseReplyLine(line)
		switch {
		case !ok:
			return reply.Reply{}, &malformedError{line: line}
		case code != 0 && n != code:
			return reply.Reply{}, fmt.Errorf("%w: %q", errCodeMismatch, line)
		case len(texts) >= maxReplyLines:
			return reply.Reply{}, fmt.Errorf("%w: more than %d lines", errMalformed, maxReplyLines)
		}
		code = n
		texts = append(texts, text)
		if !more {
			return reply.Parse(code, strings.Join(texts, "\n")), nil
		}
	}
}

// malformedError is a line that is no SMTP reply; it keeps the line,
// which at the greeting shows what protocol answered instead.
type malformedError struct{ line string }

func (e *malformedError) Error() string        { return fmt.Sprintf("%v: %q", errMalformed, e.line) }
func (e *malformedError) Is(target error) bool { return target == errMalformed }

// parseReplyLine splits "250-text" into 250, true (more lines follow) and
// "text". The code is three digits, the first 2 to 5 (RFC 5321 §4.2).
func parseReplyLine(line string) (code int, more bool, text string, ok bool) {
	if len(line) < 3 {
		return 0, false, "", false
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", false
		}
		code = code*10 + int(line[i]-'0')
	}
	if code < 200 || code > 599 {
		return 0, false, "", false
	}
	if len(line) == 3 {
		return code, false, "", true
	}
	switch line[3] {
	case '-':
		more = true
	case ' ':
	default:
		return 0, false, "", false
	}
	return code, more, line[4:], true
}

// readLine reads a line and returns it without CRLF (or a bare LF, which
// some servers send).
func readLine(r *bufio.Reader) (string, error) {
	var buf []byte
	for {
		frag, err := r.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxReplyLine {
			return "", errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(buf) > 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return "", err
		}
		s := strings.TrimSuffix(string(buf), "\n")
		return strings.TrimSuffix(s, "\r"), nil
	}
}
