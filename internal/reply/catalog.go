package reply

// The replies Sluice gives, in one place. Admins paste these into search
// engines: where Exchange has a reply for the same condition, its code and
// wording are kept (5.7.54, 5.7.57, 5.7.60, 5.3.4, 5.6.11). Each text says
// what happened and, where the client or admin can do something, what.
var (
	// Session and sequencing (RFC 5321 §4.2, RFC 3463).
	Closing        = Reply{221, [3]int{2, 0, 0}, "Service closing transmission channel"}
	OK             = Reply{250, [3]int{2, 0, 0}, "OK"}
	SenderOK       = Reply{250, [3]int{2, 1, 0}, "Sender OK"}
	RecipientOK    = Reply{250, [3]int{2, 1, 5}, "Recipient OK"}
	ResetOK        = Reply{250, [3]int{2, 0, 0}, "Reset OK"}
	VrfyCannot     = Reply{252, [3]int{2, 0, 0}, "Cannot VRFY user, but will accept message and attempt delivery"}
	ExpnCannot     = Reply{252, [3]int{2, 0, 0}, "Cannot EXPN mailing list, but will accept message and attempt delivery"}
	StartData      = Reply{354, [3]int{}, "Start mail input; end with <CRLF>.<CRLF>"}
	ReadyTLS       = Reply{220, [3]int{2, 0, 0}, "Ready to start TLS"}
	AuthOK         = Reply{235, [3]int{2, 7, 0}, "Authentication successful"}
	Unrecognized   = Reply{500, [3]int{5, 5, 2}, "Syntax error, command unrecognized"}
	LineTooLong    = Reply{500, [3]int{5, 5, 2}, "Line too long"}
	SyntaxParams   = Reply{501, [3]int{5, 5, 4}, "Syntax error in parameters or arguments"}
	BadAddress     = Reply{501, [3]int{5, 1, 3}, "Invalid address"}
	NotImplemented = Reply{502, [3]int{5, 5, 1}, "Command not implemented"}
	BadSequence    = Reply{503, [3]int{5, 5, 1}, "Bad sequence of commands"}
	NeedHelo       = Reply{503, [3]int{5, 5, 1}, "Send EHLO or HELO first"}
	NeedMail       = Reply{503, [3]int{5, 5, 1}, "Send MAIL FROM first"}
	NeedRcpt       = Reply{503, [3]int{5, 5, 1}, "Send RCPT TO first"}
	NestedMail     = Reply{503, [3]int{5, 5, 1}, "Sender already specified"}
	NoValidRcpts   = Reply{554, [3]int{5, 5, 1}, "No valid recipients"}
	ParamNotImpl   = Reply{555, [3]int{5, 5, 4}, "MAIL FROM/RCPT TO parameter not recognized or not implemented"}
	TooManyErrors  = Reply{421, [3]int{4, 7, 0}, "Too many errors on this connection, closing"}
	TooManyJunk    = Reply{421, [3]int{4, 7, 0}, "Too many commands without a message, closing"}
	IdleTimeout    = Reply{421, [3]int{4, 4, 2}, "Idle timeout, closing connection"}
	DataTimeout    = Reply{421, [3]int{4, 4, 2}, "Timeout waiting for message data, closing connection"}
	ShuttingDown   = Reply{421, [3]int{4, 3, 2}, "Service shutting down, try again later"}
	TempError      = Reply{451, [3]int{4, 3, 0}, "Temporary server error, try again later"}
	StoreFull      = Reply{452, [3]int{4, 3, 1}, "Insufficient system storage, try again later"}
	Unavailable    = Reply{451, [3]int{4, 3, 2}, "Mail queue is not available, try again later"}
	SMTPUTF8Needed = Reply{553, [3]int{5, 6, 7}, "Address has non-ASCII characters; the client must use SMTPUTF8"}

	// Connections.
	ConnectDenied   = Reply{554, [3]int{5, 7, 1}, "Client host is not allowed to connect to this server"}
	TooManyConns    = Reply{421, [3]int{4, 7, 0}, "Too many connections from your host, try again later"}
	TooManyConnsAll = Reply{421, [3]int{4, 7, 0}, "Too many connections to this connector, try again later"}

	// TLS (RFC 3207).
	TLSRequired      = Reply{530, [3]int{5, 7, 0}, "Must issue a STARTTLS command first"}
	TLSNotAvailable  = Reply{454, [3]int{4, 7, 0}, "TLS not available"}
	TLSAlreadyActive = Reply{503, [3]int{5, 5, 1}, "TLS already active"}
	// Sent in plain text to a client that spoke plain SMTP, or waited for a
	// banner, on a port with implicit TLS.
	ImplicitTLSExpected = Reply{421, [3]int{4, 7, 0}, "This port expects TLS from the first byte (implicit TLS, as on port 465); connect with TLS, or use STARTTLS on a port that offers it"}

	// Authentication (RFC 4954).
	AuthNotOffered   = Reply{504, [3]int{5, 5, 4}, "Unrecognized authentication type"}
	AuthInvalid      = Reply{535, [3]int{5, 7, 8}, "Authentication credentials invalid"}
	AuthCancelled    = Reply{501, [3]int{5, 0, 0}, "Authentication cancelled"}
	AuthBadBase64    = Reply{501, [3]int{5, 5, 2}, "Cannot decode the authentication response as base64"}
	AuthBadPlain     = Reply{501, [3]int{5, 5, 2}, "AUTH PLAIN data must be the base64 of authorization identity (may be empty), NUL, user name, NUL, password"}
	AuthAlready      = Reply{503, [3]int{5, 5, 1}, "Already authenticated"}
	AuthInMail       = Reply{503, [3]int{5, 5, 1}, "AUTH is not allowed during a mail transaction"}
	AuthNeedsTLS     = Reply{538, [3]int{5, 7, 11}, "Encryption required for requested authentication mechanism; send STARTTLS first"}
	AuthTooManyFails = Reply{421, [3]int{4, 7, 0}, "Too many failed authentication attempts from your host, try again later"}
	AuthTempFail     = Reply{454, [3]int{4, 7, 0}, "Temporary authentication failure, try again later"}

	// Policy: the codes of seeds 000, 001 and 004.
	NotAuthenticated = Reply{530, [3]int{5, 7, 57}, "Client was not authenticated to send anonymous mail during MAIL FROM"}
	RelayDenied      = Reply{550, [3]int{5, 7, 54}, "Unable to relay recipient in non-accepted domain"}
	SendAsDenied     = Reply{550, [3]int{5, 7, 60}, "Client does not have permissions to send as this sender"}
	NoPostmaster     = Reply{550, [3]int{5, 1, 1}, "This relay has no accepted domain to deliver postmaster to; write postmaster@ and the domain"}

	// Limits.
	TooBig         = Reply{552, [3]int{5, 3, 4}, "Message size exceeds fixed maximum message size"}
	HeaderTooBig   = Reply{552, [3]int{5, 3, 4}, "Header size exceeds fixed maximum size"}
	TooManyRcpts   = Reply{452, [3]int{4, 5, 3}, "Too many recipients"}
	DataLineLength = Reply{500, [3]int{5, 5, 2}, "Message has a line longer than this server accepts"}

	// Content: SMTP smuggling (bare CR or LF in DATA). Exchange Online's code.
	BareLineEnding = Reply{550, [3]int{5, 6, 11}, "Bare line feeds (LF) or carriage returns (CR) are not allowed in message data; end every line with CRLF, or ask the administrator to allow normalisation on this connector"}
)

// TooBigFor is TooBig with the limit: a client (or the person behind it)
// can only shrink or split a message to a number it is told.
func TooBigFor(max int64) Reply {
	return TooBig.Withf("Message size exceeds fixed maximum message size of %d bytes", max)
}

// DataLineLengthFor is DataLineLength with the limit and the two ways to
// stay under it: shorter lines, or an encoding that makes them short.
func DataLineLengthFor(max int) Reply {
	return DataLineLength.Withf("Message has a line longer than this server accepts (%d octets, CRLF excluded); wrap long lines, or send the body as quoted-printable or base64", max)
}
