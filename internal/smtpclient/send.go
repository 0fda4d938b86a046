package smtpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/reply"
)

// Envelope is what Send needs to know about one message.
type Envelope struct {
	From     mail.Address
	Rcpts    []mail.Recipient
	Size     int64 // octets of the body; SIZE= when the server offers SIZE (RFC 1870)
	Body8Bit bool  // BODY=8BITMIME when offered (RFC 6152)
	SMTPUTF8 bool  // the message needs SMTPUTF8 (RFC 6531 §3.4)
	// SMTPUTF8Asked: the client asked for SMTPUTF8; passed on when the
	// server offers it, even for a message that does not need it.
	SMTPUTF8Asked bool
	Ret           mail.Ret // RET= when the server offers DSN (RFC 3461 §4.3)
	EnvID         string   // ENVID= when the server offers DSN (RFC 3461 §4.4)
}

// Result is what the server answered to one message.
type Result struct {
	// Rcpts holds the reply to each of Envelope.Rcpts, in order; a zero
	// Reply where none was read. Nil when MAIL was refused.
	Rcpts []reply.Reply
	// Data is the reply to the end of the message data, or the refusal
	// of DATA itself, or a refusal the server sent before the end of the
	// data and then stopped reading; zero when DATA was not reached or
	// not sent.
	Data reply.Reply
}

// errNoRcpts: Send needs at least one recipient.
var errNoRcpts = errors.New("smtpclient: Send: the envelope has no recipients")

// Send runs one mail transaction: MAIL FROM, RCPT TO for each recipient,
// DATA and the dot-stuffed body (RFC 5321 §3.3). When the server offers
// PIPELINING, MAIL, the RCPTs and DATA go out in one write and their
// replies are read after (RFC 2920 §3.1); otherwise one at a time.
//
// A recipient the server refuses is not an error: its reply is in
// Result.Rcpts. When every recipient is refused, no message data is sent.
// Send leaves the session ready for the next message, sending RSET when a
// transaction stays open.
//
// The error is an *Error when MAIL was refused, or when the message cannot
// go to this server as it is (553 5.6.7 when it needs SMTPUTF8 and the
// server does not offer it; 552 5.3.4 when it is larger than the SIZE the
// server declared; Local is set, and a '*' note in the transcript says
// why); nothing is sent then. Any other error means the
// connection is gone; Result, never nil, then holds what was answered
// before. Whether the connection can carry another message is Err's to
// say: a server may hang up after a refusal (with a 421, or without a
// word).
func (c *Client) Send(ctx context.Context, env *Envelope, body io.Reader) (res *Result, err error) {
	res = &Result{}
	if err := c.usable(); err != nil {
		return res, err
	}
	if len(env.Rcpts) == 0 {
		return res, errNoRcpts
	}
	if r, ok := c.check(env); !ok {
		// The conversation shows nothing of the message: it says why.
		c.trace('*', "message not sent: "+r.Error())
		return res, &Error{Command: "MAIL FROM", Reply: r, Local: true}
	}
	defer c.watch(ctx, "mail transaction")(&err)
	var t txn
	if c.Supports("PIPELINING") {
		t, err = c.pipelined(res, env)
	} else {
		t, err = c.oneByOne(res, env)
	}
	if err != nil {
		if refused(t.mail) {
			// MAIL was refused and the server hung up before the
			// other replies: its refusal is the answer, not the
			// lost connection.
			return res, &Error{Command: "MAIL FROM", Reply: t.mail}
		}
		return res, err
	}
	accepted, dataReply := t.accepted, t.data
	if dataReply.Code != 354 && dataReply.Positive() {
		// Taking it as the final reply would report a message delivered
		// that was never sent.
		return res, c.fail(fmt.Errorf("smtpclient: DATA: unexpected reply %q", dataReply.Error()))
	}
	switch {
	case dataReply.Code == 354 && accepted > 0:
		return res, c.data(res, body)
	case dataReply.Code == 354:
		// RFC 2920 §3.1: a server may accept DATA though it refused every
		// recipient; end the empty message at once, and its reply is moot.
		c.writeLine(".", "")
		if err := c.flush("DATA"); err != nil {
			return res, err
		}
		if _, err := c.readReply("DATA", c.t.DataEnd); err != nil {
			return res, err
		}
	case accepted > 0 && dataReply.Code != 0:
		res.Data = dataReply // DATA refused
	}
	err = c.rset()
	if refused(t.mail) {
		// Also when RSET found the server gone: many hang up after
		// refusing a sender, without a 421.
		return res, &Error{Command: "MAIL FROM", Reply: t.mail}
	}
	return res, err
}

// refused reports whether r is a refusal (4xx or 5xx), as opposed to a
// success or no reply at all.
func refused(r reply.Reply) bool { return r.Code/100 == 4 || r.Code/100 == 5 }

// txn is how far a transaction got before the message data.
type txn struct {
	mail     reply.Reply // reply to MAIL
	accepted int         // recipients accepted
	data     reply.Reply // reply to DATA, zero if not sent
}

// check refuses locally what the server cannot take (RFC 6531 §3.4,
// RFC 1870 §6).
func (c *Client) check(env *Envelope) (reply.Reply, bool) {
	if env.SMTPUTF8 && !c.Supports("SMTPUTF8") {
		return reply.Reply{Code: 553, Enhanced: [3]int{5, 6, 7},
			Text: "The message needs SMTPUTF8 (internationalised addresses or headers) and the next hop does not offer it"}, false
	}
	if max := c.MaxSize(); max > 0 && env.Size > max {
		return reply.Reply{Code: 552, Enhanced: [3]int{5, 3, 4},
			Text: fmt.Sprintf("Message size exceeds fixed maximum message size of the next hop (%d octets, the limit is %d)", env.Size, max)}, false
	}
	return reply.Reply{}, true
}

// pipelined writes MAIL, every RCPT and DATA at once, then reads the
// replies in order. If MAIL is refused the RCPT replies are read and
// dropped (they are 503s).
func (c *Client) pipelined(res *Result, env *Envelope) (t txn, err error) {
	if err := c.unasked("MAIL FROM"); err != nil {
		return t, err
	}
	c.writeLimit = c.t.Mail
	c.writeLine("MAIL FROM:"+env.From.Path()+c.mailParams(env), "")
	for _, rc := range env.Rcpts {
		c.writeLine("RCPT TO:"+rc.Addr.Path()+c.rcptParams(rc), "")
	}
	c.writeLine("DATA", "")
	if err := c.flush("MAIL FROM"); err != nil {
		return t, err
	}
	if t.mail, err = c.readReply("MAIL FROM", c.t.Mail); err != nil {
		return t, err
	}
	rcpts := make([]reply.Reply, len(env.Rcpts))
	for i := range env.Rcpts {
		if rcpts[i], err = c.readReply("RCPT TO", c.t.Rcpt); err != nil {
			res.Rcpts = keepIf(t.mail, rcpts)
			return t, err
		}
		if rcpts[i].Code/100 == 2 {
			t.accepted++
		}
	}
	res.Rcpts = keepIf(t.mail, rcpts)
	if t.mail.Code/100 != 2 {
		t.accepted = 0
	}
	t.data, err = c.readReply("DATA", c.t.DataInit)
	return t, err
}

// keepIf returns rcpts when MAIL was accepted: after a refused MAIL they
// say only "need MAIL first", which is not news about the recipients.
func keepIf(mail reply.Reply, rcpts []reply.Reply) []reply.Reply {
	if mail.Code/100 != 2 {
		return nil
	}
	return rcpts
}

// oneByOne sends MAIL, each RCPT and DATA, waiting for each reply
// (RFC 5321 §3.3), and stops as soon as going on is pointless.
func (c *Client) oneByOne(res *Result, env *Envelope) (t txn, err error) {
	t.mail, err = c.cmd("MAIL FROM", c.t.Mail, "MAIL FROM:"+env.From.Path()+c.mailParams(env), "")
	if err != nil || t.mail.Code/100 != 2 {
		return t, err
	}
	res.Rcpts = make([]reply.Reply, len(env.Rcpts))
	for i, rc := range env.Rcpts {
		if res.Rcpts[i], err = c.cmd("RCPT TO", c.t.Rcpt, "RCPT TO:"+rc.Addr.Path()+c.rcptParams(rc), ""); err != nil {
			return t, err
		}
		if res.Rcpts[i].Code/100 == 2 {
			t.accepted++
		}
	}
	if t.accepted == 0 {
		return t, nil
	}
	t.data, err = c.cmd("DATA", c.t.DataInit, "DATA", "")
	return t, err
}

// data sends the message after DATA's 354 and reads the final reply. A
// message that cannot be read to its end is not ended with "." — the
// connection is closed instead, so the server discards what it got
// (RFC 5321 §4.1.1.4 has no other way to abort).
func (c *Client) data(res *Result, body io.Reader) error {
	c.writeLimit = c.t.DataBlock
	dw := &dotWriter{w: c.w, lineStart: true}
	if _, err := io.Copy(dw, body); err != nil {
		if dw.err != nil {
			return c.refusedEarly(res, err)
		}
		return c.fail(fmt.Errorf("smtpclient: DATA: reading the message: %w", err))
	}
	c.trace('*', fmt.Sprintf("message data: %d octets", dw.n))
	dw.end()
	c.trace('>', ".")
	if err := c.w.Flush(); err != nil {
		return c.refusedEarly(res, err)
	}
	r, err := c.readReply("DATA", c.t.DataEnd)
	res.Data = r
	return err
}

// earlyReplyWait bounds the look for a reply after the message data could
// not be written (and DataBlock, when shorter): one sent before the server
// stopped reading is there already.
const earlyReplyWait = 5 * time.Second

// refusedEarly handles a write of message data that failed (werr). A
// server may refuse a message before its end — a size limit reached, a
// virus found — and hang up or stop reading (RFC 5321 §4.2.5 lets it
// reply at any time after 354). Its refusal, when it sent one, is the
// answer to the message and goes in Result.Data, so that a 552 bounces
// instead of the message being retried as a lost connection. Only a
// refusal counts: a message cut off was not delivered, whatever else the
// server says. The connection is closed either way.
func (c *Client) refusedEarly(res *Result, werr error) error {
	err := &ConnError{Command: "DATA", Err: werr}
	c.raw.SetReadDeadline(time.Now().Add(min(c.t.DataBlock, earlyReplyWait)))
	if r, rerr := readReply(c.r, func(l string) { c.trace('<', l) }); rerr == nil && refused(r) {
		res.Data = r
	}
	return c.fail(err)
}

// rset ends an open transaction (RFC 5321 §4.1.1.5). A server that refuses
// RSET is in a state we cannot reason about; the connection is dropped.
func (c *Client) rset() error {
	r, err := c.cmd("RSET", c.t.Command, "RSET", "")
	if err != nil {
		return err
	}
	if r.Code != 250 {
		return c.fail(fmt.Errorf("smtpclient: RSET refused: %s", r.Error()))
	}
	return nil
}
