package smtpclient

// The transcript is the conversation as Options.Transcript sees it, for
// the protocol log and `sluice test connect`: '+' with the local address
// once the connection is made (the protocol log's local column: only the
// connection knows it), every line sent ('>') and received ('<') without
// its CRLF, notes ('*') where a line-by-line account would be wrong or
// too much: the TLS handshake, and the message data, of which only the
// size is shown; and '-' when the connection is closed.
//
// Nothing that proves identity is shown (as mox's trace levels and
// Exchange's protocol log do it): the payload of an AUTH line with an
// initial response is "***" ("AUTH PLAIN ***", "AUTH XOAUTH2 ***"), and so
// is every answer to a 334 challenge (LOGIN's user name and password, the
// empty line after an XOAUTH2 error). The server's challenges are shown as
// they came: they carry no secrets.

import "strings"

// trace passes a line to the transcript.
func (c *Client) trace(dir byte, line string) {
	if c.o.Transcript != nil {
		c.o.Transcript(dir, c.redact(line))
	}
}

// minSecret is the shortest secret redact replaces: shorter strings would
// blot out ordinary words (as in the token package).
const minSecret = 6

// redact replaces the credentials of the AUTH under way, and the base64
// responses that carry them, with "***": some servers quote what they
// got in their refusal ("535 5.7.8 authentication failed for <base64>"),
// and that reply goes to the transcript and, as an *Error, to the queue's
// last error and the logs.
func (c *Client) redact(text string) string {
	for _, s := range c.secrets {
		if len(s) >= minSecret {
			text = strings.ReplaceAll(text, s, "***")
		}
	}
	return text
}

// writeLine buffers one command line; the transcript shows mask instead
// when mask is not empty.
func (c *Client) writeLine(line, mask string) {
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if mask != "" {
		line = mask
	}
	c.trace('>', line)
}
