// Package dsn composes and parses delivery status notifications: the
// bounces, delay notices and success notices Sluice sends to a message's
// envelope sender, and the ones other MTAs send back.
//
// A notice is an RFC 6522 multipart/report with report-type=delivery-status
// and up to three parts:
//
//  1. text/plain; charset=utf-8: what happened, per recipient, in words a
//     user and an administrator can act on: the upstream's exact reply, the
//     server that gave it, when, and a hint chosen by the enhanced status
//     code (Hint; health and tracking reuse it).
//  2. message/delivery-status (RFC 3464): per-message fields, then one block
//     of per-recipient fields per recipient.
//  3. The original: text/rfc822-headers (its header section), or
//     message/rfc822 when the sender asked for RET=FULL (RFC 3461 §4.3),
//     the notice reports a failure, and the original is at most MaxReturn
//     octets (Report.ReturnsFull); the text says when it was too large.
//
// A notice to a sender whose address is not ASCII gets the RFC 6533 types
// instead: message/global-delivery-status, message/global-headers and
// message/global, so UTF-8 addresses appear as they are. One to an ASCII
// sender stays plain, so that it passes any upstream: UTF-8 recipients as
// utf-8-addr-xtext, a UTF-8 header in RFC 2047 words (RFC 6533 §3, §6).
//
// The package owns the format only. Which recipients to report, when (the
// queue's retry, delay and expiry rules), NOTIFY and never bouncing <> are
// the queue's business; Compose only refuses to address a notice to <>.
// The MIME plumbing (header folding, part writing, transfer encodings,
// reading foreign messages) is github.com/emersion/go-message.
package dsn
