package smtpd

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
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
		s.log.Warn("TLS handshake failed", "err", err)
		return true
	}
	// RFC 3207 §4.2: forget everything learnt before TLS, a login
	// included: the session is back in its initial state.
	s.helo, s.esmtp, s.tx, s.policy.User = "", false, nil, nil
	return false
}

// handshake runs the server side of TLS on the connection.
func (s *session) handshake() error {
	tc := tls.Server(s.conn, s.rc.TLSConfig())
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.srv.metrics.TLS("receive", s.rc.Name, false)
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
