package delivery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/dsn"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// putUTF8 queues a message from app@fabrikam.com, whose notices go out
// through the same connector as the message, with the client's SMTPUTF8
// request (asked) and whether the receiving side found it needed.
func (r *relay) putUTF8(asked, needs bool, header string, to string) mail.ID {
	r.t.Helper()
	env := &mail.Envelope{ID: mail.NewID(), Received: time.Now(), From: "app@fabrikam.com",
		SMTPUTF8Asked: asked, SMTPUTF8: needs, Body: mail.Body8BitMIME}
	addr, err := mail.ParseMailbox(to, true)
	if err != nil {
		r.t.Fatal(err)
	}
	env.Rcpts = []mail.Recipient{{Addr: addr}}
	body := header + "\r\nbody\r\n"
	if err := r.q.Put(context.Background(), env, strings.NewReader(body)); err != nil {
		r.t.Fatal(err)
	}
	return env.ID
}

// RFC 6531 §3.4 forbids only an internationalised message to a server
// without SMTPUTF8; one the client flagged that is ASCII throughout goes
// without the parameter, as Postfix sends it (SMTPUTF8_README). One that
// is not ASCII bounces, and the notice to its ASCII sender is plain
// (RFC 6533 §6) so that it goes through the same upstream.
func TestSMTPUTF8ToUpstreamWithout(t *testing.T) {
	t.Run("ASCII message flagged SMTPUTF8 is delivered without it", func(t *testing.T) {
		up := smtptest.NewServer(t, smtptest.Options{NoSMTPUTF8: true})
		r := start(t, "", onceFabrikam(up.Addr(), ""))
		r.waitDone(r.putUTF8(true, false, "Subject: x\r\n", "bob@fabrikam.com"))
		msgs := up.WaitMessages(t, 1)
		if _, ok := msgs[0].Params["SMTPUTF8"]; ok || msgs[0].From != "app@fabrikam.com" {
			t.Errorf("upstream without SMTPUTF8 got MAIL FROM %q with %v", msgs[0].From, msgs[0].Params)
		}
	})
	t.Run("an upstream that offers it gets the client's request", func(t *testing.T) {
		up := smtptest.NewServer(t, smtptest.Options{})
		r := start(t, "", onceFabrikam(up.Addr(), ""))
		r.waitDone(r.putUTF8(true, false, "Subject: x\r\n", "bob@fabrikam.com"))
		if _, ok := up.WaitMessages(t, 1)[0].Params["SMTPUTF8"]; !ok {
			t.Error("SMTPUTF8 not passed on to an upstream that offers it")
		}
	})
	t.Run("UTF-8 header bounces and the notice goes through", func(t *testing.T) {
		up := smtptest.NewServer(t, smtptest.Options{NoSMTPUTF8: true})
		r := start(t, "", onceFabrikam(up.Addr(), ""))
		id := r.putUTF8(true, true, "Subject: Grüße\r\n", "bob@fabrikam.com")
		r.waitDone(id)
		msgs := up.WaitMessages(t, 1)
		n := msgs[0]
		if n.From != "" || len(n.Rcpts) != 1 || n.Rcpts[0] != "app@fabrikam.com" {
			t.Fatalf("upstream got MAIL FROM %q to %v; want the notice from <> to app@fabrikam.com", n.From, n.Rcpts)
		}
		if _, ok := n.Params["SMTPUTF8"]; ok {
			t.Errorf("notice sent with SMTPUTF8 to an upstream that does not offer it: %v", n.Params)
		}
		rep, err := dsn.Parse(n.Data)
		if err != nil {
			t.Fatalf("notice does not parse: %v\n%s", err, n.Data)
		}
		if rep.UTF8 || len(rep.Recipients) != 1 || rep.Recipients[0].Status != [3]int{5, 6, 7} {
			t.Errorf("notice global %v, recipients %+v; want a plain report of 5.6.7", rep.UTF8, rep.Recipients)
		}
		if !mail.ASCII(n.Data) {
			t.Errorf("notice to an ASCII sender is not ASCII:\n%s", n.Data)
		}
		if len(r.logLines("notice cannot be delivered; its sender will not be told")) != 0 {
			t.Error("a delivered notice logged as lost")
		}
	})
}

// A notice that fails for good cannot itself be bounced (RFC 5321 §6.1):
// the sender is never told, which the operator must hear of.
func TestLostNoticeIsAnError(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{Replies: map[string]string{
		"gone@fabrikam.com": "550 5.1.1 no such user", "app@fabrikam.com": "550 5.1.1 no such user"}})
	r := start(t, "", onceFabrikam(up.Addr(), ""))
	id := r.putNotify("app@fabrikam.com", mail.NotifyDefault, "lost", "", "gone@fabrikam.com")
	r.waitDone(id)
	waitFor(t, "the lost notice to be logged", func() bool {
		return len(r.logLines("notice cannot be delivered; its sender will not be told")) == 1
	})
	l := r.logLines("notice cannot be delivered; its sender will not be told")[0]
	for _, want := range []string{"level=ERROR", "about=" + string(id), "sender=app@fabrikam.com"} {
		if !strings.Contains(l, want) {
			t.Errorf("log line lacks %s: %s", want, l)
		}
	}
}

// Mail from <> that a client relayed (a bounce or a read receipt of
// another system's) is no notice of Sluice's: its failing for good is a
// warning, not the Error for a sender who will not be told.
func TestRelayedNullSenderMailIsNoLostNotice(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{Replies: map[string]string{"gone@fabrikam.com": "550 5.1.1 no such user"}})
	r := start(t, "", onceFabrikam(up.Addr(), ""))
	r.waitDone(r.putNotify("", mail.NotifyDefault, "a bounce relayed", "", "gone@fabrikam.com"))
	waitFor(t, "the failure logged", func() bool { return len(r.logLines("not bouncing a message from <>")) == 1 })
	if l := r.logLines("not bouncing a message from <>")[0]; !strings.Contains(l, "level=WARN") {
		t.Errorf("want a warning: %s", l)
	}
	if lines := r.logLines("notice cannot be delivered; its sender will not be told"); len(lines) != 0 {
		t.Errorf("relayed mail from <> logged as a lost notice: %s", lines[0])
	}
}

// A UTF-8 address the message's flag does not know of (an operator's
// redirect to jörg@, a record written before the flag meant "needs")
// still makes the attempt need SMTPUTF8: RCPT TO:<jörg@…> without it is
// a protocol error at any upstream.
func TestUTF8AddressNeedsSMTPUTF8WhateverTheFlag(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	r := start(t, "", onceFabrikam(up.Addr(), ""))
	r.waitDone(r.putUTF8(false, false, "Subject: x\r\n", "jörg@fabrikam.com"))
	if _, ok := up.WaitMessages(t, 1)[0].Params["SMTPUTF8"]; !ok {
		t.Error("a UTF-8 recipient went without SMTPUTF8")
	}
}
