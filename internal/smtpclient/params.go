package smtpclient

import (
	"strconv"
	"strings"

	"github.com/sluice-relay/sluice/internal/mail"
)

// mailParams are the ESMTP parameters of MAIL FROM, each only when the
// server offers its extension.
func (c *Client) mailParams(env *Envelope) string {
	var b strings.Builder
	if env.Size > 0 && c.Supports("SIZE") { // RFC 1870 §6
		b.WriteString(" SIZE=" + strconv.FormatInt(env.Size, 10))
	}
	// RFC 6152 §3: without 8BITMIME offered the message goes without BODY=;
	// nearly every server takes 8-bit data, and there is nothing better to do.
	if env.Body8Bit && c.Supports("8BITMIME") {
		b.WriteString(" BODY=8BITMIME")
	}
	if env.SMTPUTF8 || env.SMTPUTF8Asked && c.Supports("SMTPUTF8") { // RFC 6531 §3.4; Send checked it is offered when needed
		b.WriteString(" SMTPUTF8")
	}
	if c.Supports("DSN") {
		if env.Ret != mail.RetDefault { // RFC 3461 §4.3
			b.WriteString(" RET=" + string(env.Ret))
		}
		if env.EnvID != "" { // RFC 3461 §4.4
			b.WriteString(" ENVID=" + xtext(env.EnvID))
		}
	}
	return b.String()
}

// rcptParams are the DSN parameters of RCPT TO (RFC 3461 §4.1, §4.2),
// passed on only to a server that offers DSN.
func (c *Client) rcptParams(rc mail.Recipient) string {
	if !c.Supports("DSN") {
		return ""
	}
	var b strings.Builder
	if n := notify(rc.Notify); n != "" {
		b.WriteString(" NOTIFY=" + n)
	}
	if rc.ORcpt != "" {
		typ, addr, ok := strings.Cut(rc.ORcpt, ";")
		if !ok {
			typ, addr = "rfc822", rc.ORcpt
		}
		b.WriteString(" ORCPT=" + typ + ";" + xtext(addr))
	}
	return b.String()
}

// notify renders NOTIFY's value: NEVER alone, or the list of conditions.
func notify(n mail.Notify) string {
	if n == mail.NotifyDefault {
		return ""
	}
	if n&mail.NotifyNever != 0 {
		return "NEVER"
	}
	var w []string
	if n&mail.NotifySuccess != 0 {
		w = append(w, "SUCCESS")
	}
	if n&mail.NotifyFailure != 0 {
		w = append(w, "FAILURE")
	}
	if n&mail.NotifyDelay != 0 {
		w = append(w, "DELAY")
	}
	return strings.Join(w, ",")
}

// xtext encodes s as RFC 3461 §4 xtext: octets outside "!" to "~", and
// "+" and "=", become "+" and two upper-case hex digits. ENVID and ORCPT
// arrive as the sending client wrote them, normally xtext already, so a
// "+" followed by two upper-case hex digits is taken as encoded and kept:
// valid xtext passes through unchanged, and anything else comes out
// valid. Only upper case, as the RFC has it: a client that did not encode
// at all sends "bob+dev@" raw, and reading "+de" as an escape would make
// the next hop's notices name "bob\xDEv@".
func xtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '+' && i+2 < len(s) && isUpperHex(s[i+1]) && isUpperHex(s[i+2]) {
			b.WriteString(s[i : i+3])
			i += 2
			continue
		}
		if ch < '!' || ch > '~' || ch == '+' || ch == '=' {
			b.WriteByte('+')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

func isUpperHex(ch byte) bool { return '0' <= ch && ch <= '9' || 'A' <= ch && ch <= 'F' }
