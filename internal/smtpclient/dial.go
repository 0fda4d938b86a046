package smtpclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// Dial connects to addr (host:port) over TCP and reads the greeting. A
// greeting other than 2xx is returned as an *Error.
func Dial(ctx context.Context, addr string, o Options) (*Client, error) {
	conn, err := connect(ctx, dialer(o), addr, o.ConnectWithin)
	if err != nil && isReset(err) {
		// The server took the connection and reset it before the
		// dialer returned (a refused connection is ECONNREFUSED): it
		// hung up before its greeting, as one does that closes.
		return nil, &ConnError{Command: "greeting", Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("smtpclient: connect: %w", err)
	}
	c, err := newClient(ctx, conn, o, hostOf(addr), time.Time{})
	return c, named(err, addr)
}

// DialTLS connects to addr with implicit TLS (RFC 8314 §3.3, port 465):
// the TLS handshake comes first, then the greeting. An empty
// cfg.ServerName is taken from addr. The connect timeout covers the
// handshake too, as it would with a tls.Dialer; the handshake is this
// package's own so that the transcript has the connection ('+') before
// a handshake that fails on it.
func DialTLS(ctx context.Context, addr string, cfg *tls.Config, o Options) (*Client, error) {
	cfg = cfg.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = hostOf(addr)
	}
	d := dialer(o)
	by := time.Now().Add(d.Timeout)
	if !d.Deadline.IsZero() && d.Deadline.Before(by) {
		by = d.Deadline
	}
	conn, err := connect(ctx, d, addr, o.ConnectWithin)
	if err != nil {
		return nil, fmt.Errorf("smtpclient: connect with TLS: %w", err)
	}
	c, err := newClient(ctx, tls.Client(conn, cfg), o, cfg.ServerName, by)
	return c, named(err, addr)
}

// ErrSlowConnect is matched (errors.Is) by a connect that did not
// complete within Options.ConnectWithin.
var ErrSlowConnect = errors.New("the TCP connect took longer than allowed")

// slowConnect is ErrSlowConnect with the dialer's own error.
type slowConnect struct {
	within time.Duration
	cause  error
}

func (e slowConnect) Error() string {
	return fmt.Sprintf("no TCP connection within %v: %v", e.within, e.cause)
}
func (e slowConnect) Is(target error) bool { return target == ErrSlowConnect }
func (e slowConnect) Unwrap() error        { return e.cause }

// connect makes the TCP connection, within the time given when it is
// shorter than the dialer's timeout. Only that limit passing is a slow
// connect: ctx ending (a shutdown) or the address refusing is not.
func connect(ctx context.Context, d *net.Dialer, addr string, within time.Duration) (net.Conn, error) {
	if within <= 0 || within >= d.Timeout {
		return d.DialContext(ctx, "tcp", addr)
	}
	// The dialer's own timeout, not a context's: the dialer can report
	// its timeout before a context's timer has marked the context done.
	short := *d
	short.Timeout = within
	conn, err := short.DialContext(ctx, "tcp", addr)
	var ne net.Error
	if err != nil && ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
		return nil, slowConnect{within, err}
	}
	return conn, err
}

// named makes a NotSMTPError name the server as the caller gave it (a
// host name and port) rather than by the address connected to.
func named(err error, addr string) error {
	var ns *NotSMTPError
	if errors.As(err, &ns) {
		ns.Addr = addr
	}
	return err
}

// dialer is Options.Dialer with its timeout defaulted.
func dialer(o Options) *net.Dialer {
	var d net.Dialer
	if o.Dialer != nil {
		d = *o.Dialer
	}
	if d.Timeout <= 0 {
		d.Timeout = o.Timeouts.withDefaults().Connect
	}
	return &d
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
