// Package smtpclient is the SMTP client delivery uses to hand messages to
// the next hop (smarthosts, MX hosts, Microsoft 365, Google) and that
// `sluice test connect` uses to show what an upstream offers.
//
// It owns the conversation on one connection: the greeting, EHLO (HELO
// when EHLO is refused), STARTTLS (RFC 3207), AUTH PLAIN, LOGIN and
// XOAUTH2 (RFC 4954, RFC 4616), and the mail transaction — MAIL, RCPT,
// DATA with dot-stuffing — pipelined when the server offers PIPELINING
// (RFC 2920), with SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8
// (RFC 6531) and DSN (RFC 3461) parameters. Several messages may share a
// connection: Send leaves the session ready for the next MAIL.
//
// Replies are kept as the upstream wrote them (reply.Parse), because they
// become the queue's last error and admins search for them. How errors
// are reported:
//
//   - A refusal is an *Error carrying the command and the reply. After a
//     refusal the connection can be used again, except after a 421 (the
//     server is closing) or when the server hung up after its refusal:
//     the Client is closed too, every later call fails, and Err says why.
//   - Any other error (I/O, timeout, a malformed reply, a cancelled
//     context) means the connection is gone; the Client is closed.
//   - Send reports each recipient's reply and the final DATA reply in its
//     Result; a recipient refused is not an error of Send.
//
// Each wait for the server has a deadline from Timeouts (RFC 5321
// §4.5.3.2), and a context that ends during a call closes the connection.
//
// It leaves to others which host to connect to, whether TLS is required,
// which credentials or token to use, and what to do with a refusal
// (delivery and the queue decide). A Client is not safe for concurrent
// use, except that Close may be called at any time.
package smtpclient
