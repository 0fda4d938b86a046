// Package policy decides, for one receive session, what the client may do:
// which receive connector serves a client, whether it may AUTH, which
// senders and recipients it may use and which limits apply. Every function
// is pure — a config snapshot and session facts in, nil or a reply.Reply
// out — so each decision is a row in a table test.
package policy

import (
	"net/netip"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/reply"
)

// Session is what policy needs to know about a receive session.
type Session struct {
	Connector *config.ReceiveConnector
	TLS       bool         // TLS is active (STARTTLS done or implicit)
	User      *config.User // nil until AUTH succeeds
	InMail    bool         // a MAIL transaction is open
}

// Has reports whether the session holds p, through its connector or its
// authenticated user.
func (s *Session) Has(p config.Permission) bool {
	return s.Connector.Has(p) || (s.User != nil && s.User.Has(p))
}

// Trusted reports whether the session is authenticated or externally
// secured: such clients are not tarpitted and may submit without the
// anonymous right.
func (s *Session) Trusted() bool {
	return s.User != nil || s.Has(config.PermExternallySecured)
}

// Select returns the receive connector that serves a client at remote
// that connected to local: among connectors bound to local's address and
// port, the one whose remote IP range matching the client is the most
// specific (Exchange's rule). Config checks guarantee there is no tie.
func Select(cfg *config.Config, local netip.AddrPort, remote netip.Addr) (*config.ReceiveConnector, error) {
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	var best *config.ReceiveConnector
	bestBits := -1
	for i := range cfg.ReceiveConnectors {
		rc := &cfg.ReceiveConnectors[i]
		if !boundTo(rc, local) {
			continue
		}
		if bits := rc.Serves(remote); bits > bestBits {
			best, bestBits = rc, bits
		}
	}
	if best == nil {
		return nil, reply.ConnectDenied
	}
	return best, nil
}

// boundTo reports whether the connector listens where the client connected:
// the same address, or a wildcard on the same port.
func boundTo(rc *config.ReceiveConnector, local netip.AddrPort) bool {
	for _, b := range rc.Bindings {
		if b.Port() != local.Port() {
			continue
		}
		if b.Addr() == local.Addr() || (b.Wildcard() && b.Addr().Is4() == local.Addr().Is4()) ||
			(b.Wildcard() && b.Addr().Is6()) {
			return true
		}
	}
	return false
}

// Auth decides whether the client may start AUTH with mech.
func Auth(s *Session, mech string) error {
	switch {
	case s.User != nil:
		return reply.AuthAlready
	case s.InMail:
		return reply.AuthInMail
	case !AuthOffered(s, mech):
		if len(s.Connector.AuthMechanisms) == 0 {
			return reply.AuthNotOffered.With("this connector offers no AUTH")
		}
		return reply.AuthNotOffered.Withf("Unrecognized authentication type; this connector offers %s", mechList(s.Connector))
	case s.Connector.RequiresTLSForAuth() && !s.TLS:
		return reply.AuthNeedsTLS
	}
	return nil
}

// AuthOffered reports whether mech is one of the connector's mechanisms.
func AuthOffered(s *Session, mech string) bool {
	for _, m := range s.Connector.AuthMechanisms {
		if string(m) == mech {
			return true
		}
	}
	return false
}

// AdvertiseAuth reports whether EHLO should list AUTH now: not before TLS
// when TLS is required for it (RFC 4954 §4 lets a server hide it).
func AdvertiseAuth(s *Session) bool {
	return len(s.Connector.AuthMechanisms) > 0 && s.User == nil && (s.TLS || !s.Connector.RequiresTLSForAuth())
}

func mechList(rc *config.ReceiveConnector) string {
	out := ""
	for i, m := range rc.AuthMechanisms {
		if i > 0 {
			out += " "
		}
		out += string(m)
	}
	return out
}

// MaxMessageSize is the size limit for the session in octets, 0 for none
// (externally secured connectors skip it, as Exchange's do).
func MaxMessageSize(s *Session) int64 {
	if s.Has(config.PermExternallySecured) {
		return 0
	}
	return int64(s.Connector.Limits.MaxMessageSize)
}

// MaxRecipients is the recipient limit per message, 0 for none.
func MaxRecipients(s *Session) int {
	if s.Has(config.PermExternallySecured) {
		return 0
	}
	return s.Connector.Limits.MaxRecipients
}

// Tarpit is how long to hold back a refusal: unauthenticated clients
// wait, so that address harvesting and relay probing are slow.
func Tarpit(s *Session) time.Duration {
	if s.Trusted() {
		return 0
	}
	return s.Connector.Limits.Tarpit.D()
}

// Mail decides whether the client may start a transaction from sender
// with the declared SIZE (0 if none).
func Mail(cfg *config.Config, s *Session, from mail.Address, size int64) error {
	if s.Connector.RequireTLSForMail && !s.TLS {
		return reply.TLSRequired
	}
	if s.User == nil && !s.Has(config.PermAnonymous) {
		return reply.NotAuthenticated
	}
	if max := MaxMessageSize(s); max > 0 && size > max {
		return reply.TooBigFor(max)
	}
	return Sender(cfg, s, from)
}

// Sender decides whether the session may use from as the envelope sender:
// an authenticated user only as its send-as addresses, an anonymous client
// not as an address in an accepted domain (it would be spoofing the
// organisation), unless the session may accept any sender.
func Sender(cfg *config.Config, s *Session, from mail.Address) error {
	if s.Has(config.PermAcceptAnySender) {
		return nil
	}
	if s.User != nil {
		if maySendAs(s.User, from) {
			return nil
		}
		return reply.SendAsDenied
	}
	if !from.IsNull() && cfg.AcceptedDomain(from.Domain()) != nil {
		return reply.SendAsDenied
	}
	return nil
}

// Rcpt decides whether the client may add rcpt to a transaction that has
// count recipients so far.
func Rcpt(cfg *config.Config, s *Session, rcpt mail.Address, count int) error {
	if max := MaxRecipients(s); max > 0 && count >= max {
		return reply.TooManyRcpts.Withf("Too many recipients; at most %d per message, send the rest in another message", max)
	}
	if s.Has(config.PermRelay) {
		return nil
	}
	if cfg.AcceptedDomain(rcpt.Domain()) == nil {
		return reply.RelayDenied
	}
	// RFC 2505 §2.1: user%other@accepted, other!user@accepted and
	// "user@other"@accepted are relaying through the next hop, which
	// trusts this relay and may act on the percent hack or bang path.
	if strings.ContainsAny(rcpt.Local(), "%!@") {
		return reply.RelayDenied.With("% ! or @ in the local part would route it onward, so write the final address instead")
	}
	return nil
}
