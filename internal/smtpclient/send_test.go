package smtpclient

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// Every case runs with and without PIPELINING: the outcome must be the same.
func TestSend(t *testing.T) {
	tests := []struct {
		name     string
		o        smtptest.Options
		rcpts    []string
		want     []string // each recipient's reply line
		wantData string   // final reply line, "" when DATA was not reached
		wantErr  string   // Send's error, "" for none
		wantMsgs int      // messages the server accepted
		noData   bool     // the message data must not be sent, and the transaction be reset
	}{
		{name: "one recipient", rcpts: []string{"b@fabrikam.example"},
			want: []string{"250 2.1.5 Recipient OK"}, wantData: "250 2.0.0 OK queued", wantMsgs: 1},
		{name: "one refused, one deferred, one accepted",
			o: smtptest.Options{Replies: map[string]string{
				"gone@fabrikam.example":  "550 5.1.1 no such user",
				"later@fabrikam.example": "451 4.2.1 try later"}},
			rcpts:    []string{"gone@fabrikam.example", "later@fabrikam.example", "b@fabrikam.example"},
			want:     []string{"550 5.1.1 no such user", "451 4.2.1 try later", "250 2.1.5 Recipient OK"},
			wantData: "250 2.0.0 OK queued", wantMsgs: 1},
		{name: "every recipient refused: no message data",
			o:     smtptest.Options{Replies: map[string]string{"gone@fabrikam.example": "550 5.1.1 no such user", "later@fabrikam.example": "451 4.2.1 try later"}},
			rcpts: []string{"gone@fabrikam.example", "later@fabrikam.example"},
			want:  []string{"550 5.1.1 no such user", "451 4.2.1 try later"}, noData: true},
		{name: "MAIL refused", o: smtptest.Options{MailReply: "550 5.7.60 Client does not have permissions to send as this sender"},
			rcpts: []string{"b@fabrikam.example"}, wantErr: "MAIL FROM: 550 5.7.60 Client does not have permissions to send as this sender", noData: true},
		{name: "message refused at the end of data", o: smtptest.Options{DataReply: "554 5.6.0 Message rejected as spam"},
			rcpts: []string{"b@fabrikam.example"}, want: []string{"250 2.1.5 Recipient OK"}, wantData: "554 5.6.0 Message rejected as spam"},
		{name: "multi-line final reply kept whole", o: smtptest.Options{DataReply: "250 2.0.0 OK\nqueued as 42"},
			rcpts: []string{"b@fabrikam.example"}, want: []string{"250 2.1.5 Recipient OK"}, wantData: "250 2.0.0 OK\nqueued as 42", wantMsgs: 1},
	}
	for _, pipelining := range []bool{true, false} {
		for _, tt := range tests {
			name := tt.name
			if !pipelining {
				name += " without pipelining"
			}
			t.Run(name, func(t *testing.T) {
				o := tt.o
				o.NoPipelining = !pipelining
				srv := smtptest.NewServer(t, o)
				c, _ := dial(t, srv.Addr())
				if got := c.Supports("PIPELINING"); got != pipelining {
					t.Fatalf("Supports(PIPELINING) = %v", got)
				}
				res, err := c.Send(context.Background(), envelope(tt.rcpts...), strings.NewReader(testBody))
				if got := errString(err); got != tt.wantErr {
					t.Fatalf("Send error = %q, want %q", got, tt.wantErr)
				}
				if got := replyLines(res.Rcpts...); !slices.Equal(got, tt.want) && (len(got) != 0 || len(tt.want) != 0) {
					t.Errorf("Rcpts = %q, want %q", got, tt.want)
				}
				if got := replyLines(res.Data)[0]; got != tt.wantData {
					t.Errorf("Data = %q, want %q", got, tt.wantData)
				}
				// The session is ready for the next message.
				if err := c.Noop(context.Background()); err != nil {
					t.Errorf("NOOP after Send: %v", err)
				}
				c.Quit()
				if got := len(srv.Messages()); got != tt.wantMsgs {
					t.Errorf("server accepted %d messages, want %d", got, tt.wantMsgs)
				}
				if tt.noData {
					noBody(t, srv.Commands())
				}
			})
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// noBody fails if the message data reached the server as commands, or if
// the transaction was left open without RSET.
func noBody(t *testing.T, cmds []string) {
	t.Helper()
	for _, c := range cmds {
		if strings.HasPrefix(c, "Subject:") || strings.HasPrefix(c, "From:") || c == "Hello." {
			t.Errorf("message data sent though DATA was not accepted: %q", cmds)
		}
	}
	if !slices.Contains(cmds, "RSET") {
		t.Errorf("no RSET after the failed transaction: %q", cmds)
	}
}

// With PIPELINING, MAIL, the RCPTs and DATA reach the server in one
// segment; the server's Commands would show the same either way, so look
// at what the client flushed.
func TestSendPipelinesOneWrite(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	c, _ := dial(t, srv.Addr())
	var writes []string
	c.w.Reset(recordWriter{&writes, connWriter{c}})
	if _, err := c.Send(context.Background(), envelope("b@fabrikam.example", "c@fabrikam.example"), strings.NewReader(testBody)); err != nil {
		t.Fatal(err)
	}
	want := "MAIL FROM:<a@contoso.example>\r\nRCPT TO:<b@fabrikam.example>\r\nRCPT TO:<c@fabrikam.example>\r\nDATA\r\n"
	if len(writes) == 0 || writes[0] != want {
		t.Errorf("writes = %q, want first %q", writes, want)
	}
}

type recordWriter struct {
	writes *[]string
	w      connWriter
}

func (r recordWriter) Write(p []byte) (int, error) {
	*r.writes = append(*r.writes, string(p))
	return r.w.Write(p)
}

// Lines starting with "." survive the round trip, and a body without a
// final CRLF gets one.
func TestSendDotStuffing(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	c, _ := dial(t, srv.Addr())
	bodies := []struct{ in, want string }{
		{".\r\n..\r\n.leading\r\nmiddle . dot\r\n.\r\n", ".\r\n..\r\n.leading\r\nmiddle . dot\r\n.\r\n"},
		{"Subject: no final CRLF\r\n\r\n.", "Subject: no final CRLF\r\n\r\n.\r\n"},
		{"", ""},
		{"bare\nLF\n.\nand CR\r.\r", "bare\r\nLF\r\n.\r\nand CR\r\n.\r\n"},
	}
	for i, b := range bodies {
		if i > 0 {
			if err := c.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		res, err := c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(b.in))
		if err != nil || res.Data.Code != 250 {
			t.Fatalf("Send %q: %v, %v", b.in, res.Data, err)
		}
	}
	msgs := srv.WaitMessages(t, len(bodies))
	for i, b := range bodies {
		if got := string(msgs[i].Data); got != b.want {
			t.Errorf("body %q arrived as %q, want %q", b.in, got, b.want)
		}
		if msgs[i].Session != 1 {
			t.Errorf("message %d came on session %d, want all on 1", i, msgs[i].Session)
		}
	}
}

// ESMTP parameters go out only when the server offers their extension.
func TestSendParameters(t *testing.T) {
	env := &Envelope{
		From: "a@contoso.example", Size: 1234, Body8Bit: true, Ret: mail.RetHeaders, EnvID: "QQ314159+2Bx y",
		Rcpts: []mail.Recipient{
			{Addr: "b@fabrikam.example", Notify: mail.NotifySuccess | mail.NotifyFailure, ORcpt: "rfc822;b+x@fabrikam.example"},
			{Addr: "c@fabrikam.example", Notify: mail.NotifyNever},
			{Addr: "d@fabrikam.example"},
		},
	}
	tests := []struct {
		name      string
		o         smtptest.Options
		env       *Envelope
		wantMail  map[string]string
		wantRcpts []map[string]string
	}{
		{name: "everything offered", env: env,
			wantMail: map[string]string{"SIZE": "1234", "BODY": "8BITMIME", "RET": "HDRS", "ENVID": "QQ314159+2Bx+20y"},
			wantRcpts: []map[string]string{
				{"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;b+2Bx@fabrikam.example"},
				{"NOTIFY": "NEVER"},
				{}}},
		{name: "no DSN", o: smtptest.Options{NoDSN: true}, env: env,
			wantMail:  map[string]string{"SIZE": "1234", "BODY": "8BITMIME"},
			wantRcpts: []map[string]string{{}, {}, {}}},
		{name: "SMTPUTF8", env: &Envelope{From: "jörg@contoso.example", SMTPUTF8: true, Rcpts: []mail.Recipient{{Addr: "b@fabrikam.example"}}},
			wantMail: map[string]string{"SMTPUTF8": ""}, wantRcpts: []map[string]string{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, tt.o)
			c, _ := dial(t, srv.Addr())
			if _, err := c.Send(context.Background(), tt.env, strings.NewReader(testBody)); err != nil {
				t.Fatal(err)
			}
			m := srv.WaitMessages(t, 1)[0]
			if !mapsEqual(m.Params, tt.wantMail) {
				t.Errorf("MAIL FROM parameters = %v, want %v", m.Params, tt.wantMail)
			}
			for i, want := range tt.wantRcpts {
				if !mapsEqual(m.RcptParams[i], want) {
					t.Errorf("RCPT %s parameters = %v, want %v", m.Rcpts[i], m.RcptParams[i], want)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// What the server cannot take is refused before anything is sent, and the
// connection stays usable.
func TestSendRefusedLocally(t *testing.T) {
	tests := []struct {
		name string
		o    smtptest.Options
		env  *Envelope
		want string
	}{
		{name: "SMTPUTF8 not offered", o: smtptest.Options{NoSMTPUTF8: true},
			env:  &Envelope{From: "jörg@contoso.example", SMTPUTF8: true, Rcpts: []mail.Recipient{{Addr: "b@fabrikam.example"}}},
			want: "MAIL FROM: 553 5.6.7 The message needs SMTPUTF8 (internationalised addresses or headers) and the next hop does not offer it"},
		{name: "larger than SIZE", o: smtptest.Options{MaxSize: 1000},
			env:  &Envelope{From: "a@contoso.example", Size: 1001, Rcpts: []mail.Recipient{{Addr: "b@fabrikam.example"}}},
			want: "MAIL FROM: 552 5.3.4 Message size exceeds fixed maximum message size of the next hop (1001 octets, the limit is 1000)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, tt.o)
			c, tr := dial(t, srv.Addr())
			before := len(srv.Commands())
			_, err := c.Send(context.Background(), tt.env, strings.NewReader(testBody))
			var se *Error
			if !errors.As(err, &se) || err.Error() != tt.want {
				t.Fatalf("Send = %v, want *Error %q", err, tt.want)
			}
			if se.Temporary() {
				t.Error("Temporary() = true for a 5xx")
			}
			if !se.Local {
				t.Error("Local = false for a refusal the server never made")
			}
			if note := "* message not sent: " + se.Reply.Error(); !strings.Contains(tr.String(), note) {
				t.Errorf("transcript lacks %q:\n%s", note, tr)
			}
			if cmds := srv.Commands(); len(cmds) != before {
				t.Errorf("sent %q, want nothing", cmds[before:])
			}
			if err := c.Noop(context.Background()); err != nil {
				t.Errorf("connection not usable after a local refusal: %v", err)
			}
		})
	}
}

// Delivery sends several messages on one connection.
func TestSendReusesConnection(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	c, _ := dial(t, srv.Addr())
	for i := 0; i < 5; i++ {
		if i > 0 {
			if err := c.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(testBody)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit: %v", err)
	}
	srv.WaitMessages(t, 5)
	if got := srv.MessagesPerSession(); len(got) != 1 || got[0] != 5 {
		t.Errorf("messages per session = %v, want [5]", got)
	}
}

// scriptedServer answers the transaction commands from a table.
func scriptedServer(t *testing.T, replies map[string]string) string {
	return rawServer(t, "220 x ESMTP", func(line string) string {
		verb, _, _ := strings.Cut(line, " ")
		if verb == "EHLO" {
			return "250-x\n250 PIPELINING"
		}
		if r, ok := replies[verb]; ok {
			return r
		}
		return "250 2.0.0 OK"
	})
}

// RFC 2920 §3.1: a server may answer 354 to a pipelined DATA though it
// refused every recipient. The client ends the empty message at once and
// resets; it never sends the body.
func TestSendDataAcceptedWithoutRecipients(t *testing.T) {
	addr := scriptedServer(t, map[string]string{"RCPT": "550 5.1.1 no such user", "DATA": "354 go ahead", ".": "554 5.5.1 no valid recipients"})
	c, tr := dial(t, addr)
	res, err := c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(testBody))
	if err != nil || res.Data.Code != 0 || res.Rcpts[0].Code != 550 {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	got := tr.String()
	if strings.Contains(got, "message data") || !strings.Contains(got, "> .\n< 554 5.5.1 no valid recipients\n> RSET\n< 250") {
		t.Errorf("transcript:\n%s", got)
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Errorf("NOOP: %v", err)
	}
}

// A 2xx to DATA would otherwise read as "delivered" for a message never
// sent.
func TestSendDataPositiveNot354(t *testing.T) {
	addr := scriptedServer(t, map[string]string{"DATA": "250 2.0.0 sure"})
	c, _ := dial(t, addr)
	res, err := c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(testBody))
	var se *Error
	if err == nil || errors.As(err, &se) || res.Data.Code != 0 {
		t.Fatalf("Send = %+v, %v; want a protocol error and no Data", res, err)
	}
}

// Without PIPELINING each command goes alone and waits for its reply
// (RFC 2920 §3.1 lets only a server that offers it take more): a server
// that punishes pipelining it did not offer, as Postfix and Exchange do,
// sees one command per write.
func TestSendOneAtATime(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{NoPipelining: true})
	c, _ := dial(t, srv.Addr())
	var writes []string
	c.w.Reset(recordWriter{&writes, connWriter{c}})
	if _, err := c.Send(context.Background(), envelope("b@fabrikam.example", "c@fabrikam.example"), strings.NewReader(testBody)); err != nil {
		t.Fatal(err)
	}
	want := []string{"MAIL FROM:<a@contoso.example>\r\n", "RCPT TO:<b@fabrikam.example>\r\n", "RCPT TO:<c@fabrikam.example>\r\n", "DATA\r\n"}
	if len(writes) < len(want) || !slices.Equal(writes[:len(want)], want) {
		t.Errorf("writes = %q, want first %q", writes, want)
	}
}

// A refusal of the DATA command itself (552 when the recipients' total
// is too big, 554 by policy) is the message's answer, with no data sent.
func TestSendDataCommandRefused(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		ehlo := "250 x"
		if pipelining {
			ehlo = "250-x\n250 PIPELINING"
		}
		addr := rawServer(t, "220 x ESMTP", func(line string) string {
			switch verb, _, _ := strings.Cut(line, " "); verb {
			case "EHLO":
				return ehlo
			case "DATA":
				return "552 5.3.4 Message size exceeds fixed maximum message size"
			}
			return "250 2.0.0 OK"
		})
		c, tr := dial(t, addr)
		res, err := c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(testBody))
		if err != nil || res.Data.Error() != "552 5.3.4 Message size exceeds fixed maximum message size" {
			t.Fatalf("pipelining %v: Send = %+v, %v", pipelining, res, err)
		}
		if strings.Contains(tr.String(), "message data") {
			t.Errorf("message data sent after DATA was refused:\n%s", tr)
		}
	}
}
