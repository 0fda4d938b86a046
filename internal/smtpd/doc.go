// Package smtpd owns the receive side: listeners on the receive
// connectors' bindings, SMTP sessions, STARTTLS and implicit TLS, AUTH
// PLAIN/LOGIN, the DATA reader and the Received header. Decisions come from
// package policy; an accepted message goes to a Spool, and smtpd answers
// 250 only once the Spool says the message is durable.
//
// Session states and the commands each accepts:
//
//	connect   → 220 banner (or 554 5.7.1 when no connector serves the client)
//	greeted   ← EHLO/HELO (again after STARTTLS), STARTTLS, AUTH, MAIL
//	in mail   ← RCPT (repeated), DATA, RSET
//	data      ← message octets up to <CRLF>.<CRLF>; then back to greeted
//
// NOOP, RSET, VRFY, EXPN, HELP and QUIT are accepted in every state. Replies are
// buffered and flushed when the client has nothing more pipelined (RFC 2920).
//
// Errors become replies in one place (reply.go): a reply.Reply goes to the
// client as it is; anything else is logged and answered with a generic
// 451 4.3.0 naming the session, never with internal error text.
package smtpd
