package smtpclient

import (
	"errors"
	"fmt"
	"io"

	"github.com/sluice-relay/sluice/internal/reply"
)

// Error is a refusal by the server: the command it answered and its reply,
// as the server wrote it. A few are made locally, before anything is sent,
// when the server cannot take a message as it is (see Send and Auth).
type Error struct {
	Command string // "MAIL FROM", "RCPT TO", "DATA", "AUTH LOGIN", "EHLO", "greeting", ...
	Reply   reply.Reply
	// Local marks a refusal Send or Auth made itself, before sending the
	// message or the credentials, in words of its own: no server said
	// it, and a notice must not present it as the remote MTA's (RFC 3464
	// §2.3.5-2.3.6).
	Local bool
}

// Error is "RCPT TO: 550 5.1.1 no such user".
func (e *Error) Error() string { return e.Command + ": " + e.Reply.Error() }

// Temporary reports whether trying again later may succeed (a 4xx reply).
func (e *Error) Temporary() bool { return e.Reply.Temporary() }

// Unwrap gives the reply, so reply.As finds it.
func (e *Error) Unwrap() error { return e.Reply }

// NotSMTPError is a server whose first line is no SMTP greeting: another
// protocol (HTTP, SSH, a TLS-only port's alert) answers on that port.
// Line is what it sent, for the admin to recognise.
type NotSMTPError struct {
	Addr string // host:port as dialled, or the server name
	Line string
}

func (e *NotSMTPError) Error() string {
	return fmt.Sprintf("%s is not an SMTP server (it answered %q)", e.Addr, e.Line)
}

// ConnError is the connection failing while a command was under way: the
// server closed or reset it, went silent past a timeout, or sent what is
// no reply. Command is "greeting", "EHLO", "DATA", ...
type ConnError struct {
	Command string
	Err     error
}

func (e *ConnError) Error() string { return "smtpclient: " + e.Command + ": " + e.Err.Error() }

func (e *ConnError) Unwrap() error { return e.Err }

// Closed reports whether the server closed or reset the connection, as
// opposed to a timeout or a local failure.
func (e *ConnError) Closed() bool {
	return errors.Is(e.Err, io.EOF) || errors.Is(e.Err, io.ErrUnexpectedEOF) || isReset(e.Err)
}
