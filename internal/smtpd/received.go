package smtpd

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// traceFields builds what Sluice adds in front of a message: the Received
// field (RFC 5321 §4.4) naming the connector, TLS and authenticated user,
// and Message-ID and Date when the device left them out (RFC 5322 §3.6
// requires Date; many scanners send neither).
func traceFields(env *mail.Envelope, fqdn, proto string, h *header) []byte {
	o := env.Origin
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n", safeToken(o.ClientHelo), o.ClientIP.Unmap())
	fmt.Fprintf(&b, "\tby %s (Sluice) with %s id %s\r\n", fqdn, proto, env.ID)
	fmt.Fprintf(&b, "\t(connector %q", safeComment(o.Connector))
	if o.TLS != "" {
		fmt.Fprintf(&b, "; %s", o.TLS)
	}
	if o.AuthUser != "" {
		fmt.Fprintf(&b, "; authenticated as %q", safeComment(o.AuthUser))
	}
	b.WriteString(")\r\n")
	if len(env.Rcpts) == 1 { // RFC 5321 §7.2: naming one of many recipients would leak the others
		fmt.Fprintf(&b, "\tfor %s;", env.Rcpts[0].Addr.Path())
	} else {
		b.WriteString("\t;")
	}
	fmt.Fprintf(&b, " %s\r\n", env.Received.Format(time.RFC1123Z))
	if !h.hasMessageID {
		fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", env.ID, fqdn)
	}
	if !h.hasDate {
		fmt.Fprintf(&b, "Date: %s\r\n", env.Received.Format(time.RFC1123Z))
	}
	if h.none {
		b.WriteString("\r\n") // keep the client's first line in the body
	}
	return []byte(b.String())
}

// protocol is the WITH keyword of RFC 3848 / RFC 6531 §3.7.3.
func protocol(esmtp, tls, auth, utf8 bool) string {
	if !esmtp {
		return "SMTP"
	}
	p := "ESMTP"
	if utf8 {
		p = "UTF8SMTP"
	}
	if tls {
		p += "S"
	}
	if auth {
		p += "A"
	}
	return p
}

// safeToken keeps a client-supplied EHLO name from breaking the header.
func safeToken(s string) string {
	if s == "" {
		return "unknown"
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r > 127 || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_:[]", r):
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
		if b.Len() > 255 {
			break
		}
	}
	return b.String()
}

func safeComment(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 32 || r == 127 || r == '"' || r == '\\' || r == '(' || r == ')' {
			return '?'
		}
		return r
	}, s)
}
