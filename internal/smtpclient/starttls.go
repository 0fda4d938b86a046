package smtpclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// StartTLS upgrades the connection with STARTTLS (RFC 3207) and sends EHLO
// again, since what the server offered before TLS no longer holds
// (RFC 3207 §4.2). An empty cfg.ServerName is the host name dialled. A
// refusal of STARTTLS (454) is an *Error and leaves the connection as it
// was; a failed handshake closes it, with the tls error wrapped (e.g. a
// *tls.CertificateVerificationError).
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) (err error) {
	if err := c.usable(); err != nil {
		return err
	}
	if c.tls != nil {
		return errors.New("smtpclient: STARTTLS: TLS is already active")
	}
	defer c.watch(ctx, "STARTTLS")(&err)
	r, err := c.cmd("STARTTLS", c.t.Command, "STARTTLS", "")
	if err != nil {
		return err
	}
	if r.Code != 220 {
		return &Error{Command: "STARTTLS", Reply: r}
	}
	// Octets after the 220 came in the clear; taking them as replies once
	// TLS is up would let a man in the middle inject them (RFC 3207 §5,
	// the mirror of CVE-2011-0411).
	if c.r.Buffered() > 0 {
		return c.fail(errors.New("smtpclient: STARTTLS: server sent data before the TLS handshake"))
	}
	cfg = cfg.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.serverName
		if cfg.ServerName == "" {
			cfg.ServerName = hostOf(c.raw.RemoteAddr().String())
		}
	}
	tc := tls.Client(c.raw, cfg)
	if err := c.handshake(ctx, tc, time.Now().Add(c.t.Command)); err != nil {
		return c.fail(err)
	}
	c.setConn(tc)
	return c.hello()
}

// handshake runs the client side of TLS, to be done by the given time,
// and records its state.
func (c *Client) handshake(ctx context.Context, tc *tls.Conn, by time.Time) error {
	c.raw.SetDeadline(by)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("smtpclient: TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	c.tls = &st
	c.trace('*', "TLS handshake: "+tls.VersionName(st.Version)+" "+tls.CipherSuiteName(st.CipherSuite))
	return nil
}
