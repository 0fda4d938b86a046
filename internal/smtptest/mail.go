package smtptest

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// mail starts a transaction (RFC 5321 §4.1.1.2).
func (ss *session) mail(o Options, arg string) error {
	if o.DropAt == "MAIL" {
		return ss.drop("MAIL")
	}
	switch {
	case o.RequireTLS && !ss.tls:
		ss.reply("530 5.7.0 Must issue a STARTTLS command first")
		return nil
	case o.RequireAuth && ss.authUser == "":
		ss.reply("530 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM")
		return nil
	case ss.helo == "":
		ss.reply("503 5.5.1 Send EHLO or HELO first")
		return nil
	case ss.tx != nil:
		ss.reply("503 5.5.1 Sender already specified")
		return nil
	}
	from, params, ok := parsePath(arg, "FROM:")
	if !ok {
		ss.reply("501 5.5.4 Syntax error in MAIL FROM")
		return nil
	}
	if ss.busyReply != "" {
		ss.reply(ss.busyReply)
		return nil
	}
	if o.MailReply != "" {
		ss.reply(o.MailReply)
		if !strings.HasPrefix(o.MailReply, "2") {
			return nil
		}
	} else if n, _ := strconv.ParseInt(params["SIZE"], 10, 64); o.MaxSize > 0 && n > o.MaxSize {
		ss.reply("552 5.3.4 Message size exceeds fixed maximum message size")
		return nil
	} else {
		ss.reply("250 2.1.0 Sender OK")
	}
	ss.tx = &Message{From: from, Params: params, TLS: ss.tls, ClientCert: ss.clientCert, AuthUser: ss.authUser, Helo: ss.helo, Session: ss.id,
		Client: ss.conn.RemoteAddr().String()}
	return nil
}

// rcpt adds a recipient (RFC 5321 §4.1.1.3), or refuses it as
// Options.Replies says.
func (ss *session) rcpt(o Options, arg string) error {
	if o.DropAt == "RCPT" {
		return ss.drop("RCPT")
	}
	if ss.tx == nil {
		ss.reply("503 5.5.1 Send MAIL FROM first")
		return nil
	}
	to, params, ok := parsePath(arg, "TO:")
	if !ok || to == "" {
		ss.reply("501 5.5.4 Syntax error in RCPT TO")
		return nil
	}
	r, ok := o.Replies[to]
	if !ok {
		r, ok = o.Replies[strings.ToLower(to)]
	}
	if !ok {
		r = "250 2.1.5 Recipient OK"
	}
	if o.MaxRecipients > 0 && len(ss.tx.Rcpts) >= o.MaxRecipients && strings.HasPrefix(r, "2") {
		r = "452 4.5.3 Too many recipients"
	}
	ss.reply(r)
	if strings.HasPrefix(r, "2") {
		ss.tx.Rcpts = append(ss.tx.Rcpts, to)
		ss.tx.RcptParams = append(ss.tx.RcptParams, params)
	}
	return nil
}

// data reads the message (RFC 5321 §4.1.1.4) and records it when the
// reply is a success.
func (ss *session) data(o Options) error {
	if o.DropAt == "DATA" {
		return ss.drop("DATA")
	}
	switch {
	case ss.tx == nil:
		ss.reply("503 5.5.1 Send MAIL FROM first")
		return nil
	case len(ss.tx.Rcpts) == 0:
		ss.reply("554 5.5.1 No valid recipients")
		return nil
	}
	ss.reply("354 Start mail input; end with <CRLF>.<CRLF>")
	if err := ss.flush(); err != nil {
		return err
	}
	if o.DataReplyAfter > 0 {
		// Read that much, refuse, and hang up on the rest.
		n, _ := io.CopyN(io.Discard, ss.r, int64(o.DataReplyAfter))
		ss.logf("< (%d octets of message data, then refusing)", n)
		ss.reply(o.DataReply)
		return ss.drop("message data")
	}
	body, err := readData(ss.r)
	if err != nil {
		return err
	}
	ss.logf("< (%d octets of message data)", len(body))
	o = ss.srv.options()
	if o.HoldUntilBusy {
		<-ss.srv.turnedAway
	}
	if o.DropAt == "DOT" {
		return ss.drop("DOT")
	}
	m := *ss.tx
	ss.tx = nil
	m.Data = body
	r := o.DataReply
	if r == "" {
		r = "250 2.0.0 OK queued"
	}
	if strings.HasPrefix(r, "2") {
		ss.srv.record(m)
		ss.taken++
	}
	ss.reply(r)
	if o.CloseAfter > 0 && ss.taken >= o.CloseAfter && o.CloseReply == "" {
		return ss.drop(fmt.Sprintf("after %d messages", ss.taken))
	}
	return nil
}

// parsePath reads "FROM:<addr> KEY=VALUE ..." after the prefix.
func parsePath(arg, prefix string) (string, map[string]string, bool) {
	arg = strings.TrimLeft(arg, " ")
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, false
	}
	arg = strings.TrimLeft(arg[len(prefix):], " ")
	if !strings.HasPrefix(arg, "<") {
		return "", nil, false
	}
	end := strings.IndexByte(arg, '>')
	if end < 0 {
		return "", nil, false
	}
	params := map[string]string{}
	for _, p := range strings.Fields(arg[end+1:]) {
		k, v, _ := strings.Cut(p, "=")
		params[strings.ToUpper(k)] = v
	}
	return arg[1:end], params, true
}
