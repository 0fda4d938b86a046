package delivery_test

import (
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/dsn"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// RFC 3461 §5.2: a sender that asked (NOTIFY=SUCCESS) is told of a
// delivery by whoever ends Sluice's responsibility for it: Sluice, for a
// drop directory (final delivery, "delivered") and for an upstream that
// does not offer DSN ("relayed"); the upstream itself when it offers DSN
// and gets NOTIFY passed on.
func TestSuccessNotice(t *testing.T) {
	const both = mail.NotifySuccess | mail.NotifyFailure
	cases := []struct {
		name     string
		upstream *smtptest.Options // nil: the recipients are ours, delivered to the drop directory
		from     string
		notify   mail.Notify
		to       []string
		want     dsn.Action // "": no notice
	}{
		{name: "drop directory is final delivery", from: "app@contoso.com", notify: both,
			to: []string{"bob@contoso.com", "carol@contoso.com"}, want: dsn.ActionDelivered},
		{name: "upstream without DSN", upstream: &smtptest.Options{NoDSN: true}, from: "app@contoso.com", notify: both,
			to: []string{"bob@fabrikam.com", "carol@fabrikam.com"}, want: dsn.ActionRelayed},
		{name: "upstream with DSN tells the sender itself", upstream: &smtptest.Options{}, from: "app@contoso.com", notify: both,
			to: []string{"bob@fabrikam.com"}},
		{name: "failure only", from: "app@contoso.com", notify: mail.NotifyFailure, to: []string{"bob@contoso.com"}},
		{name: "no NOTIFY", from: "app@contoso.com", to: []string{"bob@contoso.com"}},
		{name: "failure only to an upstream without DSN", upstream: &smtptest.Options{NoDSN: true}, from: "app@contoso.com",
			notify: mail.NotifyFailure, to: []string{"bob@fabrikam.com"}},
		{name: "null sender", from: "", notify: mail.NotifySuccess, to: []string{"bob@contoso.com"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var up *smtptest.Server
			conn := ""
			if tc.upstream != nil {
				up = smtptest.NewServer(t, *tc.upstream)
				conn = onceFabrikam(up.Addr(), "")
			}
			r := start(t, "", conn)
			r.waitDone(r.putNotify(tc.from, tc.notify, tc.name, "", tc.to...))
			notices := r.notices()
			if up != nil {
				checkPassedOn(t, up, tc.upstream.NoDSN, tc.notify)
			}
			if tc.want == "" {
				if len(notices) != 0 {
					t.Fatalf("%d notices; want none: %+v", len(notices), notices[0].Recipients)
				}
				return
			}
			if len(notices) != 1 {
				t.Fatalf("%d notices; want one for all %d recipients", len(notices), len(tc.to))
			}
			n := notices[0]
			if n.From != "app@contoso.com" || n.Return != mail.RetHeaders {
				t.Errorf("notice to %q returning %q; want to app@contoso.com with the header (RET=HDRS)", n.From, n.Return)
			}
			if len(n.Recipients) != len(tc.to) {
				t.Fatalf("notice about %d recipients; want %d: %+v", len(n.Recipients), len(tc.to), n.Recipients)
			}
			for i, rc := range n.Recipients {
				if string(rc.Final) != tc.to[i] || rc.Action != tc.want || rc.Status[0] != 2 {
					t.Errorf("recipient %d: %s %s %v; want %s %s 2.x.x", i, rc.Final, rc.Action, rc.Status, tc.to[i], tc.want)
				}
				switch {
				case tc.want == dsn.ActionDelivered && (rc.RemoteMTA != "" || rc.Diagnostic != ""):
					t.Errorf("a drop directory delivery names a Remote-MTA %q and diagnostic %q", rc.RemoteMTA, rc.Diagnostic)
				case tc.want == dsn.ActionRelayed && (!strings.Contains(rc.RemoteMTA, "127.0.0.1") || !strings.HasPrefix(rc.Diagnostic, "250 ")):
					// RFC 3461 §6.3 (h), (i): who took it, and what it said.
					t.Errorf("relayed: Remote-MTA %q, diagnostic %q; want the upstream and its 250", rc.RemoteMTA, rc.Diagnostic)
				}
			}
		})
	}
}

// checkPassedOn: NOTIFY goes to an upstream that offers DSN (RFC 3461
// §5.2.1 (c)), never to one that does not (§5.2.2 (a)).
func checkPassedOn(t *testing.T, up *smtptest.Server, noDSN bool, notify mail.Notify) {
	t.Helper()
	msgs := up.Messages()
	if len(msgs) != 1 {
		t.Fatalf("upstream got %d messages; want 1", len(msgs))
	}
	for i, p := range msgs[0].RcptParams {
		got, ok := p["NOTIFY"]
		switch {
		case noDSN && ok:
			t.Errorf("recipient %d: NOTIFY=%s sent to an upstream without DSN", i, got)
		case !noDSN && notify&mail.NotifySuccess != 0 && got != "SUCCESS,FAILURE":
			t.Errorf("recipient %d: NOTIFY=%q passed on; want SUCCESS,FAILURE", i, got)
		}
	}
}

// With rewrite_sender the upstream sees the mailbox's address as the
// sender, so a success notice it sent would go to that mailbox, not to
// the application that asked (RFC 3461 §5.2.7.1 treats a changed sender
// so): SUCCESS is not passed on and Sluice tells the application itself
// that the message was relayed. FAILURE still is: the upstream's later
// bounces can go nowhere else.
func TestSuccessNoticeWithRewrittenSender(t *testing.T) {
	r, up := rewriting(t)
	r.waitDone(r.putNotify("app@contoso.com", mail.NotifySuccess|mail.NotifyFailure, "rewritten", "", "bob@fabrikam.com"))
	msgs := up.Messages()
	if len(msgs) != 1 {
		t.Fatalf("upstream got %d messages; want 1", len(msgs))
	}
	if got := msgs[0].RcptParams[0]["NOTIFY"]; got != "FAILURE" {
		t.Errorf("NOTIFY=%q passed on with a rewritten sender; want FAILURE", got)
	}
	notices := r.notices()
	if len(notices) != 1 || notices[0].From != "app@contoso.com" ||
		len(notices[0].Recipients) != 1 || notices[0].Recipients[0].Action != dsn.ActionRelayed {
		t.Fatalf("notices %+v; want one relayed notice to app@contoso.com", notices)
	}
}

// A notice Sluice sends through a rewrite_sender connector goes from the
// mailbox too (the upstream takes mail from it only and would refuse
// <>), with MAILER-DAEMON kept as Reply-To and NOTIFY=NEVER, so that an
// upstream offering DSN sends no notice about the notice (README).
func TestNoticeThroughRewritingConnector(t *testing.T) {
	r, up := rewriting(t)
	r.waitDone(r.putNotify("app@fabrikam.com", mail.NotifySuccess, "tell me", "", "bob@fabrikam.com"))
	waitFor(t, "the relayed notice upstream", func() bool { return len(up.Messages()) == 2 })
	n := up.Messages()[1]
	if n.From != "relay@fabrikam.com" || n.Rcpts[0] != "app@fabrikam.com" || n.RcptParams[0]["NOTIFY"] != "NEVER" {
		t.Errorf("notice went as MAIL FROM %q to %q with NOTIFY=%q; want the mailbox, to app@fabrikam.com, NEVER",
			n.From, n.Rcpts, n.RcptParams[0]["NOTIFY"])
	}
	if data := string(n.Data); !strings.Contains(data, "From: <relay@fabrikam.com>") || !strings.Contains(data, "Reply-To:") ||
		!strings.Contains(data, "MAILER-DAEMON@") || !strings.Contains(data, "multipart/report") {
		t.Errorf("notice's header:\n%s", data)
	}
}
