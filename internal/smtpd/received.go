package smtpd

import (
	"strconv"
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
	b := make([]byte, 0, 320)
	b = append(b, "Received: from "...)
	b = append(b, safeToken(o.ClientHelo)...)
	b = append(b, " (["...)
	b = o.ClientIP.Unmap().AppendTo(b)
	b = append(b, "])\r\n\tby "...)
	b = append(b, fqdn...)
	b = append(b, " (Sluice) with "...)
	b = append(b, proto...)
	b = append(b, " id "...)
	b = append(b, env.ID...)
	b = append(b, "\r\n\t(connector "...)
	b = strconv.AppendQuote(b, safeComment(o.Connector))
	if o.TLS != "" {
		b = append(b, "; "...)
		b = append(b, o.TLS...)
	}
	if o.AuthUser != "" {
		b = append(b, "; authenticated as "...)
		b = strconv.AppendQuote(b, safeComment(o.AuthUser))
	}
	b = append(b, ")\r\n"...)
	if len(env.Rcpts) == 1 { // RFC 5321 §7.2: naming one of many recipients would leak the others
		b = append(b, "\tfor "...)
		b = append(b, env.Rcpts[0].Addr.Path()...)
		b = append(b, ';')
	} else {
		b = append(b, "\t;"...)
	}
	b = append(b, ' ')
	b = env.Received.AppendFormat(b, time.RFC1123Z)
	b = append(b, "\r\n"...)
	if !h.hasMessageID {
		b = append(b, "Message-ID: <"...)
		b = append(b, env.ID...)
		b = append(b, '@')
		b = append(b, fqdn...)
		b = append(b, ">\r\n"...)
	}
	if !h.hasDate {
		b = append(b, "Date: "...)
		b = env.Received.AppendFormat(b, time.RFC1123Z)
		b = append(b, "\r\n"...)
	}
	if h.none {
		b = append(b, "\r\n"...) // keep the client's first line in the body
	}
	return b
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
