package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-relay/sluice/internal/reply"
)

// Options shape a Client; the zero value is usable.
type Options struct {
	// LocalName is the EHLO/HELO name. Empty: the address literal of the
	// local end, "[192.0.2.1]" (RFC 5321 §4.1.4 allows it when there is
	// no meaningful name).
	LocalName string
	// Timeouts for each wait; zero fields take the defaults.
	Timeouts Timeouts
	// Transcript, when set, is called once with '+' and the local
	// address ("192.0.2.1:49152") as soon as the connection is made, for
	// every line sent ('>') and received ('<'), without its CRLF, for
	// notes about the session ('*': the TLS handshake, the size of the
	// message data, whose lines are not shown), and once with '-' when
	// the connection is closed. AUTH payloads are replaced by "***".
	Transcript func(dir byte, line string)
	// Dialer makes the TCP connection; nil is a zero net.Dialer. Its
	// Timeout, when zero, becomes Timeouts.Connect.
	Dialer *net.Dialer
	// ConnectWithin, when set, bounds the TCP connect alone (not an
	// implicit TLS handshake) more tightly than the Dialer's Timeout; a
	// connect that takes longer fails with ErrSlowConnect. A caller that
	// has another address of the host to try uses it to leave an address
	// whose path is broken (RFC 8305 §5's Connection Attempt Delay).
	ConnectWithin time.Duration
}

// Timeouts bound each wait for the server. RFC 5321 §4.5.3.2 gives the
// minimums a client should wait; they are the defaults here, except
// Connect, which the RFC leaves open.
type Timeouts struct {
	Connect   time.Duration // TCP connect (and the TLS handshake of DialTLS); default 30s
	Greeting  time.Duration // the 220 greeting (§4.5.3.2.1); default 5m
	Command   time.Duration // EHLO, STARTTLS, AUTH, RSET, NOOP; default 5m
	Mail      time.Duration // MAIL FROM (§4.5.3.2.2); default 5m
	Rcpt      time.Duration // each RCPT TO (§4.5.3.2.3); default 5m
	DataInit  time.Duration // the 354 to DATA (§4.5.3.2.4); default 2m
	DataBlock time.Duration // each write of message data (§4.5.3.2.5); default 3m
	DataEnd   time.Duration // the reply to the final "." (§4.5.3.2.6); default 10m
}

// withDefaults fills zero fields with the defaults.
func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.Command, 5*time.Minute)
	def(&t.Mail, 5*time.Minute)
	def(&t.Rcpt, 5*time.Minute)
	def(&t.DataInit, 2*time.Minute)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataEnd, 10*time.Minute)
	return t
}

// Client is one SMTP session with a server.
type Client struct {
	o          Options
	t          Timeouts
	raw        net.Conn // the TCP connection: deadlines, and Close from other goroutines
	conn       net.Conn // raw, or the TLS connection over it
	r          *bufio.Reader
	w          *bufio.Writer
	writeLimit time.Duration // deadline for each write to conn
	serverName string        // host name dialled, for TLS verification

	greeting reply.Reply
	esmtp    bool
	ext      map[string]string
	tls      *tls.ConnectionState

	broken error       // why the connection is unusable; nil while it is fine
	closed atomic.Bool // Close was called

	secrets []string // during Auth: what the transcript must not show (see redact)
}

// NewClient starts a session on conn, which may be a *tls.Conn for
// implicit TLS: it reads the greeting. A greeting other than 2xx is
// returned as an *Error after QUIT, and the connection is closed.
func NewClient(ctx context.Context, conn net.Conn, o Options) (*Client, error) {
	return newClient(ctx, conn, o, "", time.Time{})
}

// newClient is NewClient with the host name dialled and, for a *tls.Conn,
// when its handshake must be done (zero: the command timeout from now).
func newClient(ctx context.Context, conn net.Conn, o Options, serverName string, handshakeBy time.Time) (*Client, error) {
	c := &Client{o: o, t: o.Timeouts.withDefaults(), raw: conn, serverName: serverName}
	c.writeLimit = c.t.Command
	c.trace('+', conn.LocalAddr().String())
	if tc, ok := conn.(*tls.Conn); ok {
		c.raw = tc.NetConn()
		if handshakeBy.IsZero() {
			handshakeBy = time.Now().Add(c.t.Command)
		}
		if err := c.handshake(ctx, tc, handshakeBy); err != nil {
			conn.Close()
			return nil, err
		}
	}
	c.setConn(conn)
	done := c.watch(ctx, "greeting")
	r, err := c.readReply("greeting", c.t.Greeting)
	done(&err)
	if err != nil {
		c.Close()
		var me *malformedError
		if errors.As(err, &me) {
			return nil, &NotSMTPError{Addr: c.raw.RemoteAddr().String(), Line: me.line}
		}
		return nil, err
	}
	c.greeting = r
	if r.Code/100 != 2 {
		// RFC 5321 §3.1: after a 554 greeting the client should QUIT.
		c.Quit()
		return nil, &Error{Command: "greeting", Reply: r}
	}
	return c, nil
}

func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	c.r = bufio.NewReaderSize(conn, 4096)
	// Large enough that a message goes out in a few writes, not one
	// syscall per 4 KB (measured: a fifth of the relay's CPU at 100 KB).
	c.w = bufio.NewWriterSize(connWriter{c}, 64<<10)
}

// Greeting is the server's 220 reply.
func (c *Client) Greeting() reply.Reply { return c.greeting }

// Extensions are the EHLO keywords the server offers, upper case, each
// with its parameters ("SIZE" → "36700160"); empty after HELO.
func (c *Client) Extensions() map[string]string {
	m := make(map[string]string, len(c.ext))
	for k, v := range c.ext {
		m[k] = v
	}
	return m
}

// Supports reports whether the server offers the EHLO keyword ext.
func (c *Client) Supports(ext string) bool {
	_, ok := c.ext[strings.ToUpper(ext)]
	return ok
}

// AuthMechanisms are the SASL mechanisms the server offers, upper case.
func (c *Client) AuthMechanisms() []string {
	return strings.Fields(strings.ToUpper(c.ext["AUTH"]))
}

// MaxSize is the message size limit the server declares with SIZE
// (RFC 1870), 0 when it declares none.
func (c *Client) MaxSize() int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(c.ext["SIZE"]), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// TLSState describes the TLS connection, nil without TLS.
func (c *Client) TLSState() *tls.ConnectionState { return c.tls }

// RemoteAddr is the server's address.
func (c *Client) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// LocalAddr is this end's address.
func (c *Client) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// Err says why the connection can no longer be used, nil while it can:
// it was lost or timed out, the server closed it with a 421 or hung up
// after a refusal, a context ended, or Close was called.
func (c *Client) Err() error { return c.usable() }

// Reset sends RSET (RFC 5321 §4.1.1.5), ending any mail transaction.
func (c *Client) Reset(ctx context.Context) error { return c.simple(ctx, "RSET") }

// Noop sends NOOP (RFC 5321 §4.1.1.9), to check the connection is alive.
func (c *Client) Noop(ctx context.Context) error { return c.simple(ctx, "NOOP") }

// simple sends a command that takes no argument and expects 250.
func (c *Client) simple(ctx context.Context, cmd string) (err error) {
	if err := c.usable(); err != nil {
		return err
	}
	defer c.watch(ctx, cmd)(&err)
	r, err := c.cmd(cmd, c.t.Command, cmd, "")
	if err != nil {
		return err
	}
	if r.Code != 250 {
		return &Error{Command: cmd, Reply: r}
	}
	return nil
}

// quitTimeout bounds QUIT: the message is delivered already, and a server
// slow to say goodbye must not hold the caller.
const quitTimeout = 5 * time.Second

// Quit sends QUIT, waits briefly for the reply and closes the connection.
func (c *Client) Quit() error {
	if c.usable() != nil {
		return c.Close()
	}
	t := min(c.t.Command, quitTimeout)
	c.writeLimit = t
	_, err := c.cmd("QUIT", t, "QUIT", "")
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes the connection without QUIT. It may be called at any time,
// also from another goroutine while a call is in progress, which then
// fails.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.o.Transcript != nil { // not trace: Close may run beside an Auth
		c.o.Transcript('-', "")
	}
	if err := c.raw.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
