package smtpd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/policy"
	"github.com/sluice-relay/sluice/internal/reply"
)

// handshakeTimeout bounds a TLS handshake; a client that stalls in it holds
// a connection slot for no purpose.
const handshakeTimeout = 30 * time.Second

// startTLS upgrades the connection (RFC 3207).
func (s *session) startTLS(arg string) bool {
	switch {
	case s.tls != nil:
		return s.reply(reply.TLSAlreadyActive)
	case s.rc.TLS.Mode != config.TLSStartTLS:
		return s.reply(reply.NotImplemented.With("STARTTLS is not offered on this connector"))
	case arg != "":
		return s.reply(reply.SyntaxParams.With("STARTTLS takes no parameters"))
	case s.tx != nil:
		return s.reply(reply.BadSequence.With("STARTTLS is not allowed during a mail transaction"))
	}
	s.send(reply.ReadyTLS)
	if err := s.flush(); err != nil {
		return true
	}
	// RFC 3207 §5: anything the client pipelined after STARTTLS arrived in
	// the clear and must not be acted upon once TLS is up.
	if n := s.r.Buffered(); n > 0 {
		s.log.Warn("discarding commands pipelined before the TLS handshake", "octets", n)
		s.r.Discard(n)
	}
	if err := s.handshake(); err != nil {
		return true
	}
	// RFC 3207 §4.2: forget everything learnt before TLS, a login
	// included: the session is back in its initial state.
	s.helo, s.esmtp, s.tx, s.policy.User = "", false, nil, nil
	return false
}

// handshake runs the server side of TLS on the connection. A failure is
// logged here, with what to change where the cause is known.
func (s *session) handshake() error {
	conn := s.conn
	var in *inputSeen
	if s.rc.TLS.Mode == config.TLSImplicit {
		in = &inputSeen{Conn: conn}
		conn = in
	}
	// A deadline rather than a context: crypto/tls closes the connection
	// when the context ends, and a client that sent nothing must still
	// get a reply. The idle timeout bounds it too when shorter: a client
	// that silent is idle, before TLS as after.
	wait := min(handshakeTimeout, s.rc.Limits.IdleTimeout.D())
	s.mu.Lock()
	closing := s.srv.closing.Load()
	if !closing {
		s.raw.SetDeadline(time.Now().Add(wait))
	}
	s.mu.Unlock()
	if closing {
		return errShutdown
	}
	tc := tls.Server(conn, s.rc.TLSConfig())
	if err := tc.Handshake(); err != nil {
		s.srv.metrics.TLS("receive", s.rc.Name, false)
		s.handshakeFailed(err, in != nil && !in.seen, wait)
		return err
	}
	s.srv.metrics.TLS("receive", s.rc.Name, true)
	st := tc.ConnectionState()
	s.tls = &st
	s.policy.TLS = true
	s.setConn(tc)
	s.proto.Note("TLS negotiated: " + s.tlsDescription())
	s.log.Debug("TLS established", "version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite))
	return nil
}

// handshakeFailed logs a failed handshake and, on an implicit TLS port,
// answers a client that speaks plain SMTP in plain text: it would
// otherwise see the connection close and nothing else.
func (s *session) handshakeFailed(err error, silent bool, waited time.Duration) {
	var plain tls.RecordHeaderError
	var ne net.Error
	implicit := s.rc.TLS.Mode == config.TLSImplicit
	switch {
	case s.srv.closing.Load():
		s.log.Info("TLS handshake ended by shutdown", "err", err)
	case implicit && errors.As(err, &plain) && plain.Conn != nil:
		// The first record is not TLS: crypto/tls leaves the connection
		// open for exactly this (RecordHeaderError.Conn).
		r := s.implicitTLSReply()
		s.log.Warn("TLS handshake failed", "err", err, "fix", "the client sent plain text to a port that expects TLS from the first byte "+
			"(implicit TLS, as on port 465): set it to use SSL/TLS, or point it at "+s.startTLSElsewhere("a port that offers STARTTLS"),
			"reply", r.Error())
		s.fail(r)
	case implicit && silent && errors.As(err, &ne) && ne.Timeout():
		r := s.implicitTLSReply()
		s.log.Warn("TLS handshake failed", "err", err, "fix", fmt.Sprintf("the client sent nothing in %s: it probably waits for a plain-text banner "+
			"(STARTTLS or no TLS) and this port expects TLS from the first byte (implicit TLS); set the client to use SSL/TLS, or point it at %s",
			waited, s.startTLSElsewhere("a port that offers STARTTLS")), "reply", r.Error())
		s.fail(r)
	case strings.Contains(err.Error(), "unsupported versions"):
		// crypto/tls has no error type for this ("tls: client offered
		// only unsupported versions: [302 301]").
		s.log.Warn("TLS handshake failed", "err", err, "fix", fmt.Sprintf("the client offers only TLS versions below this connector's "+
			"tls.min_version %s; old devices that speak only TLS 1.0 or 1.1 need a receive connector of their own, scoped to their IP, "+
			`with tls.min_version: "1.0"`, s.rc.TLS.MinVersion))
	default:
		s.log.Warn("TLS handshake failed", "err", err)
	}
}

// implicitTLSReply tells a plain-text client on an implicit TLS port
// what to change.
func (s *session) implicitTLSReply() reply.Reply {
	r := reply.ImplicitTLSExpected
	if where := s.startTLSElsewhere(""); where != "" {
		r = r.With("STARTTLS is offered on " + where)
	}
	return r
}

// startTLSElsewhere names where this client would be served with
// STARTTLS: the bindings whose connector for this client offers it, or
// otherwise if none does.
func (s *session) startTLSElsewhere(otherwise string) string {
	var where []string
	ip := s.remote.Addr()
	for i := range s.cfg.ReceiveConnectors {
		rc := &s.cfg.ReceiveConnectors[i]
		if rc.TLS.Mode != config.TLSStartTLS || rc.Serves(ip) < 0 {
			continue
		}
		for _, b := range rc.Bindings {
			local := b.AddrPort
			if b.Wildcard() {
				local = netip.AddrPortFrom(s.local.Addr(), b.Port())
			}
			// On a shared binding another connector may serve this client.
			if got, err := policy.Select(s.cfg, local, ip); err != nil || got != rc {
				continue
			}
			if local.Addr() == s.local.Addr() {
				where = append(where, fmt.Sprintf("port %d", b.Port()))
			} else {
				where = append(where, local.String())
			}
		}
	}
	if where == nil {
		return otherwise
	}
	return strings.Join(where, ", ")
}

// inputSeen records whether the client sent anything: on an implicit TLS
// port, a client that sent nothing is waiting for a plain-text banner.
type inputSeen struct {
	net.Conn
	seen bool
}

func (c *inputSeen) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.seen = true
	}
	return n, err
}

// tlsDescription is the TLS part of the Received header and tracking.
func (s *session) tlsDescription() string {
	if s.tls == nil {
		return ""
	}
	return fmt.Sprintf("%s %s", tlsVersion(s.tls.Version), tls.CipherSuiteName(s.tls.CipherSuite))
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return tls.VersionName(v)
}
