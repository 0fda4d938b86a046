package dsn

import (
	"errors"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// Action is a recipient's Action field (RFC 3464 §2.3.3).
type Action string

const (
	ActionFailed    Action = "failed"    // could not be delivered; permanent
	ActionDelayed   Action = "delayed"   // not delivered yet; still trying
	ActionDelivered Action = "delivered" // delivered to the recipient's mailbox
	ActionRelayed   Action = "relayed"   // handed to a hop that sends no further notices
	ActionExpanded  Action = "expanded"  // delivered to a list or alias that expanded it
)

// Recipient is one block of per-recipient fields (RFC 3464 §2.3).
type Recipient struct {
	// Final is the recipient the status is about (Final-Recipient:
	// rfc822;<addr>, or utf-8;<addr> for a non-ASCII address, RFC 6533 §3).
	Final mail.Address
	// Original is the ORCPT parameter as given at RCPT TO, "rfc822;bob@x"
	// (RFC 3461 §4.2); optional. Compose writes it as Original-Recipient,
	// decoded from xtext as RFC 3461 §4.2 asks; Parse returns it decoded,
	// with the type in lower case and no space after the ';'.
	Original string
	Action   Action
	// Status is the enhanced status code (RFC 3463), {5, 1, 1}. An expired
	// recipient is {5, 4, 7} with ActionFailed ("delivery time expired");
	// a delayed one has a 4.x.x code, {4, 4, 7} when nothing better is
	// known. The zero value becomes 5.0.0, 4.0.0 or 2.0.0 by Action.
	Status [3]int
	// RemoteMTA is the server that answered: "mx.fabrikam.example",
	// "mx.fabrikam.example [192.0.2.1]" (as the queue records it) or
	// "[192.0.2.1]". Written as Remote-MTA: dns; name (ip).
	RemoteMTA string
	// Diagnostic is what went wrong: the upstream's exact reply,
	// "550 5.1.1 <carol@fabrikam.example>: no such user", lines of a
	// multi-line reply separated by "\n". An SMTP reply with a RemoteMTA
	// is written as Diagnostic-Code: smtp; ..., any other text (a
	// connection error, a reply in Sluice's own words: a message it did
	// not send) as Diagnostic-Code: X-Sluice; ... as Postfix does with
	// X-Postfix. The field is one folded line, so Parse returns the lines
	// joined by " ".
	Diagnostic     string
	LastAttempt    time.Time // Last-Attempt-Date
	WillRetryUntil time.Time // Will-Retry-Until, for ActionDelayed
	// Removed is set for a failed recipient that an administrator took
	// out of the queue with a notice (sluice message remove --bounce,
	// Exchange's Remove-Message -WithNDR): no server refused it, and the
	// text says so instead of explaining Diagnostic as a refusal. The
	// delivery-status fields are a failure's as always; Parse leaves it
	// unset.
	Removed bool
}

// Report is one notice: the per-message facts and the recipients it is
// about.
type Report struct {
	ReportingMTA string    // our FQDN: Reporting-MTA: dns; <fqdn>; From: MAILER-DAEMON@<fqdn>
	ArrivalDate  time.Time // when the original was accepted (Arrival-Date)
	EnvID        string    // the ENVID parameter, xtext as given (Original-Envelope-Id, decoded)
	// MessageID is our queue id of the original, written as the extension
	// field X-Sluice-Original-Id (RFC 3464 §2.4) and shown in the text, so
	// an admin can find the message in the tracking log.
	MessageID mail.ID
	// From is the original's envelope sender: the notice's recipient.
	From       mail.Address
	Recipients []Recipient
	// Return is RET (RFC 3461 §4.3): RetFull attaches the whole original
	// as message/rfc822 when ReturnsFull says so; otherwise its header
	// section goes as text/rfc822-headers. Parse sets RetFull or
	// RetHeaders from the part it finds, RetDefault when there is none.
	Return mail.Ret
	// Original is the original message, or just its header section; the
	// composer keeps only the header section unless ReturnsFull. Bare
	// LF line endings are turned into CRLF. Empty: no third part.
	Original []byte
	// OriginalSize is the size of the whole original in octets when
	// Original holds less of it (the queue reads only the header section
	// of an original that will not be returned); 0: len(Original).
	OriginalSize int64
	// UTF8 is set when the notice is in the RFC 6533 global form and so
	// needs SMTPUTF8 to its recipient. Compose uses that form when From is
	// not ASCII, whatever UTF8 says, and the plain form otherwise. Parse
	// sets it for message/global-delivery-status.
	UTF8 bool
	// Postmaster is an optional contact shown in the text, e.g.
	// "postmaster@contoso.com" or a help desk URL.
	Postmaster string
}

// MaxReturn is the largest original, in octets, that a notice returns
// whole. RFC 3461 §6.2 lets an MTA return only the header section of a
// longer one, even with RET=FULL; Postfix does so above its
// bounce_size_limit, whose default this is. The header identifies the
// message, and the sender has its own copy of the rest; an original of
// many megabytes would only make the notice too large for the upstream
// it leaves by or for the sender's mailbox, and then the sender hears
// nothing at all.
const MaxReturn = 50000

// ReturnsFull reports whether the notice carries the whole original: the
// sender asked for it with RET=FULL, the notice reports a failure (RET
// is about failures, RFC 3461 §4.3; a success or delay notice returns
// the header section, §6.2), and the original is at most MaxReturn
// octets.
//
// An original whose header section is not ASCII goes whole only to a
// sender whose address is not ASCII either (message/global, RFC 6533
// §6.3): message/rfc822 holds an ASCII header, and a notice to an ASCII
// sender is plain (see Compose); it returns the header section, encoded.
func (r *Report) ReturnsFull() bool {
	return r.Return == mail.RetFull && r.kind() == kindFailure && r.originalSize() <= MaxReturn &&
		(!r.From.IsASCII() || mail.ASCII(headerSection(crlf(r.Original))))
}

// tooLarge reports whether the whole original was asked for and is
// withheld only for its size, which the text then says.
func (r *Report) tooLarge() bool {
	return r.Return == mail.RetFull && r.kind() == kindFailure && r.originalSize() > MaxReturn
}

func (r *Report) originalSize() int64 {
	if r.OriginalSize > 0 {
		return r.OriginalSize
	}
	return int64(len(r.Original))
}

// Errors from Compose and Parse.
var (
	// ErrNullSender: a notice cannot go to <> (RFC 5321 §4.5.5, §6.1);
	// the queue must not ask for one.
	ErrNullSender = errors.New("dsn: the original sender is <>; notices are never sent to the null path")
	ErrNoReporter = errors.New("dsn: Reporting-MTA (our host name) is empty")
	ErrNoRcpts    = errors.New("dsn: a notice needs at least one recipient")
	// ErrNotDSN is returned by Parse for a message that carries no
	// message/delivery-status part.
	ErrNotDSN = errors.New("dsn: not a delivery status notification (no message/delivery-status part)")
)

// kind is what the notice as a whole says, by its most serious recipient.
type kind int

const (
	kindSuccess kind = iota // delivered, at least for one recipient
	kindRelayed             // every recipient relayed: passed on, fate unknown
	kindDelay
	kindFailure
)

func (r *Report) kind() kind {
	k := kindRelayed
	for _, rc := range r.Recipients {
		switch rc.Action {
		case ActionFailed:
			return kindFailure
		case ActionDelayed:
			k = kindDelay
		case ActionRelayed:
		default:
			if k == kindRelayed {
				k = kindSuccess
			}
		}
	}
	return k
}

// status returns rc.Status, or the code RFC 3464 §2.3.4 makes us pick when
// the caller gave none: the field is required.
func (rc *Recipient) status() [3]int {
	if rc.Status != [3]int{} {
		return rc.Status
	}
	switch rc.Action {
	case ActionFailed:
		return [3]int{5, 0, 0}
	case ActionDelayed:
		return [3]int{4, 0, 0}
	}
	return [3]int{2, 0, 0}
}
