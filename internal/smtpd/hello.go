package smtpd

import (
	"strconv"
	"strings"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/policy"
	"github.com/sluice-relay/sluice/internal/reply"
)

// hello answers EHLO and HELO. EHLO lists what this connector offers now:
// STARTTLS until TLS is up, AUTH only where policy allows it (not before
// TLS when TLS is required for it).
func (s *session) hello(arg string, esmtp bool) bool {
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return s.reply(reply.SyntaxParams.Withf("%s requires a domain name or address literal", map[bool]string{true: "EHLO", false: "HELO"}[esmtp]))
	}
	s.endTx()
	s.helo, s.esmtp = arg, esmtp
	greeting := s.rc.FQDN + " Hello [" + s.remote.Addr().String() + "]"
	if !esmtp {
		return s.reply(reply.Reply{Code: 250, Text: greeting})
	}
	lines := []string{greeting, "PIPELINING"}
	if max := policy.MaxMessageSize(&s.policy); max > 0 {
		lines = append(lines, "SIZE "+strconv.FormatInt(max, 10))
	} else {
		lines = append(lines, "SIZE")
	}
	lines = append(lines, "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN")
	if s.offersStartTLS() {
		lines = append(lines, "STARTTLS")
	}
	if policy.AdvertiseAuth(&s.policy) {
		mechs := make([]string, len(s.rc.AuthMechanisms))
		for i, m := range s.rc.AuthMechanisms {
			mechs[i] = string(m)
		}
		lines = append(lines, "AUTH "+strings.Join(mechs, " "))
	}
	return s.reply(reply.Reply{Code: 250, Text: strings.Join(lines, "\n")})
}

// offersStartTLS reports whether STARTTLS is on offer now: on a STARTTLS
// connector, until TLS is up.
func (s *session) offersStartTLS() bool {
	return s.rc.TLSConfig() != nil && s.tls == nil && s.rc.TLS.Mode == config.TLSStartTLS
}
