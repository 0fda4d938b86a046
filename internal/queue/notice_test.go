package queue_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/dsn"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// RFC 3461 §5.2.2 (b): recipients that asked for it (NOTIFY=SUCCESS) and
// were handed at one attempt to an upstream that sends no notices get one
// "relayed" notice between them; the others get none (§5.2.8).
func TestSuccessNotice(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	env := &mail.Envelope{ID: mail.NewID(), From: "app@contoso.com", Received: f.clock.Now(), Ret: mail.RetFull, EnvID: "INV-42",
		Rcpts: []mail.Recipient{
			{Addr: "bob@contoso.com", Notify: mail.NotifySuccess | mail.NotifyFailure, ORcpt: "rfc822;bob@contoso.com"},
			{Addr: "carol@contoso.com", Notify: mail.NotifySuccess},
			{Addr: "dave@contoso.com", Notify: mail.NotifyFailure},
			{Addr: "erin@contoso.com"},
		}}
	if err := f.q.Put(ctx, env, strings.NewReader("Subject: invoice\r\n\r\nthe body\r\n")); err != nil {
		t.Fatal(err)
	}
	f.q.Done(ctx, f.q.Lease("Exchange"), repeat(ok(), 4))
	b := f.bounces(t)
	if len(b) != 1 {
		t.Fatalf("%d notices; want one for bob and carol", len(b))
	}
	n := b[0]
	if n.From != "app@contoso.com" || n.EnvID != "INV-42" || n.MessageID != env.ID {
		t.Errorf("notice to %s, ENVID %q, about %s; want to app@contoso.com, INV-42, %s", n.From, n.EnvID, n.MessageID, env.ID)
	}
	// RFC 3461 §4.3: RET=FULL is for failures; a success returns the header.
	if n.Return != mail.RetHeaders || bytes.Contains(n.Original, []byte("the body")) {
		t.Errorf("a success notice returns %s: %q; want the header only", n.Return, n.Original)
	}
	var got []string
	for _, rc := range n.Recipients {
		got = append(got, string(rc.Final))
		if rc.Action != dsn.ActionRelayed || rc.Status != [3]int{2, 0, 0} || rc.RemoteMTA != "exch1" || rc.Diagnostic != "250 2.0.0 queued" {
			t.Errorf("%s: %s %v from %q saying %q; want relayed 2.0.0 from exch1 saying 250 2.0.0 queued",
				rc.Final, rc.Action, rc.Status, rc.RemoteMTA, rc.Diagnostic)
		}
	}
	if strings.Join(got, ",") != "bob@contoso.com,carol@contoso.com" {
		t.Errorf("notice about %v; want bob and carol, who asked", got)
	}
	if n.Recipients[0].Original != "rfc822;bob@contoso.com" {
		t.Errorf("Original-Recipient %q; want bob's ORCPT", n.Recipients[0].Original)
	}
	// The tracking log tells the story as for a bounce.
	f.track.Flush()
	evs, err := tracking.Search(f.dir+"/track", tracking.Query{MessageID: string(env.ID), Event: tracking.EventDSN})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Reply != "success notice to app@contoso.com" || evs[0].Related == "" ||
		!slices.Equal(evs[0].Recipients, []string{"bob@contoso.com", "carol@contoso.com"}) {
		t.Errorf("DSN tracking events %+v; want one success notice about bob and carol", evs)
	}
	// The notice is found by the Message-ID it carries, as an admin
	// holding it would search: it had none in the tracking log.
	var noticeID string
	for _, txt := range f.noticeTexts(t) {
		if _, rest, ok := bytes.Cut(txt, []byte("\r\nMessage-ID: ")); ok {
			noticeID, _, _ = strings.Cut(string(rest), "\r\n")
		}
	}
	byHeader, err := tracking.Search(f.dir+"/track", tracking.Query{MessageID: noticeID, Event: tracking.EventSubmit})
	if err != nil {
		t.Fatal(err)
	}
	if noticeID == "" || !slices.ContainsFunc(byHeader, func(e tracking.Event) bool { return e.MessageID == noticeID }) {
		t.Errorf("search by the notice's Message-ID %q: %+v; want its SUBMIT", noticeID, byHeader)
	}
}

// Who tells the sender of a delivery depends on where it ended (RFC 3461
// §5.2), which delivery reports as the outcome's Handoff.
func TestSuccessNoticeByHandoff(t *testing.T) {
	cases := []struct {
		name    string
		from    mail.Address
		handoff queue.Handoff
		want    dsn.Action // "": no notice
	}{
		{"relayed to an upstream without DSN", "app@contoso.com", queue.HandoffRelayed, dsn.ActionRelayed},
		{"final delivery", "app@contoso.com", queue.HandoffDelivered, dsn.ActionDelivered},
		{"an upstream with DSN tells the sender itself", "app@contoso.com", queue.HandoffDSN, ""},
		{"never to the null sender", mail.Null, queue.HandoffDelivered, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "")
			ctx := context.Background()
			env := &mail.Envelope{ID: mail.NewID(), From: tc.from, Received: f.clock.Now(),
				Rcpts: []mail.Recipient{{Addr: "bob@contoso.com", Notify: mail.NotifySuccess}}}
			if err := f.q.Put(ctx, env, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
				t.Fatal(err)
			}
			o := ok()
			o.Handoff = tc.handoff
			f.q.Done(ctx, f.q.Lease("Exchange"), []queue.Outcome{o})
			b := f.bounces(t)
			if tc.want == "" {
				if len(b) != 0 {
					t.Fatalf("%d notices; want none: %+v", len(b), b[0].Recipients)
				}
				return
			}
			if len(b) != 1 || len(b[0].Recipients) != 1 || b[0].Recipients[0].Action != tc.want {
				t.Fatalf("notices %+v; want one saying %s", b, tc.want)
			}
			if rc := b[0].Recipients[0]; tc.want == dsn.ActionDelivered && (rc.RemoteMTA != "" || rc.Diagnostic != "") {
				t.Errorf("final delivery reported with Remote-MTA %q and diagnostic %q; want neither", rc.RemoteMTA, rc.Diagnostic)
			}
		})
	}
}

// A success notice that cannot be queued (the disk below min_free_space)
// does not keep the recipient queued, unlike a bounce: that would deliver
// the message again. It is given up, and the log says so.
func TestSuccessNoticeRefusedIsLogged(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	env := &mail.Envelope{ID: mail.NewID(), From: "app@contoso.com", Received: f.clock.Now(),
		Rcpts: []mail.Recipient{{Addr: "bob@contoso.com", Notify: mail.NotifySuccess}}}
	if err := f.q.Put(ctx, env, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	f.diskFull(t)
	f.q.Done(ctx, f.q.Lease("Exchange"), []queue.Outcome{ok()})
	if n := f.q.Len(); n != 0 {
		t.Fatalf("%d messages left after the delivery: %+v; want none", n, f.q.Messages(nil))
	}
	if logs := f.logs.String(); !strings.Contains(logs, "cannot queue success notice") || !strings.Contains(logs, string(env.ID)) {
		t.Errorf("the log does not say the notice about %s was lost:\n%s", env.ID, logs)
	}
}

// RFC 3461 §6.2: RET=FULL returns the whole original with a failure,
// unless it is larger than dsn.MaxReturn; then, and with a success or
// delay notice, only its header, and the text says why.
func TestReturnFull(t *testing.T) {
	line := strings.Repeat("y", 78) + "\r\n"
	small := "Subject: small\r\n\r\n" + strings.Repeat(line, 10) + "end of the body\r\n"
	large := "Subject: large\r\n\r\n" + strings.Repeat(line, 700) + "end of the body\r\n" // 56 KB
	cases := []struct {
		name     string
		body     string
		ret      mail.Ret
		delay    bool
		wantFull bool
		tooLarge bool // the text says so
	}{
		{name: "small with RET=FULL", body: small, ret: mail.RetFull, wantFull: true},
		{name: "large with RET=FULL", body: large, ret: mail.RetFull, tooLarge: true},
		{name: "large with RET=HDRS", body: large, ret: mail.RetHeaders},
		{name: "large by default", body: large},
		{name: "delay notice with RET=FULL", body: small, ret: mail.RetFull, delay: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "")
			ctx := context.Background()
			env := &mail.Envelope{ID: mail.NewID(), From: "app@contoso.com", Received: f.clock.Now(), Ret: tc.ret,
				Rcpts: []mail.Recipient{{Addr: "carol@fabrikam.example"}}}
			if err := f.q.Put(ctx, env, strings.NewReader(tc.body)); err != nil {
				t.Fatal(err)
			}
			if tc.delay {
				f.q.Done(ctx, f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("451 4.4.1 no answer")})
				f.clock.Add(4*time.Hour + time.Minute)
				f.q.Sweep(ctx)
			} else {
				f.q.Done(ctx, f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("550 5.1.1 carol: no such user")})
			}
			texts := f.noticeTexts(t)
			if len(texts) != 1 {
				t.Fatalf("%d notices; want 1", len(texts))
			}
			n, err := dsn.Parse(texts[0])
			if err != nil {
				t.Fatal(err)
			}
			head, _, _ := strings.Cut(tc.body, "\r\n\r\n")
			want, wantRet := head+"\r\n", mail.RetHeaders
			if tc.wantFull {
				want, wantRet = tc.body, mail.RetFull
			}
			if n.Return != wantRet || string(n.Original) != want {
				t.Errorf("notice returns %s, %d octets; want %s, %d octets", n.Return, len(n.Original), wantRet, len(want))
			}
			if said := bytes.Contains(texts[0], []byte("too large to return")); said != tc.tooLarge {
				t.Errorf("the text says the original is too large to return: %v; want %v", said, tc.tooLarge)
			}
		})
	}
}

// A notice's own events name the message it is about (related), as that
// message's DSN event names the notice: tracking links the two stories
// from either side. The link is kept with the queued notice, so its
// delivery after a restart still names the message.
func TestNoticeEventsNameTheMessage(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	env := f.put(t, "app@contoso.com", "carol@fabrikam.example")
	f.q.Done(ctx, f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("550 5.1.1 carol: no such user")})
	f.store.Close()
	f.open(t)
	// message show names the message a notice is about, also after a
	// restart (the envelope keeps it).
	notices := f.q.Messages(func(mi *queue.MessageInfo) bool { return mi.From == "<>" })
	if len(notices) != 1 || notices[0].About != env.ID {
		t.Errorf("notices in the queue: %+v; want one about %s", notices, env.ID)
	}
	f.q.Done(ctx, f.q.Lease("Exchange"), []queue.Outcome{ok()})
	f.track.Flush()
	evs, err := tracking.Search(f.dir+"/track", tracking.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var notice mail.ID
	for _, e := range evs {
		if e.ID == env.ID && e.Event == tracking.EventDSN {
			notice = e.Related
		}
	}
	var got []string
	for _, e := range evs {
		if e.ID == notice {
			got = append(got, string(e.Event)+" about "+string(e.Related))
		}
	}
	want := []string{"SUBMIT about " + string(env.ID), "SEND about " + string(env.ID)}
	if notice == "" || !slices.Equal(got, want) {
		t.Errorf("notice %s: events %q; want %q", notice, got, want)
	}
}

// The notice for a message an administrator removed with a bounce
// (Remove-Message -WithNDR) says so: no server refused it, so it must not
// give the advice for a refusal. It is still an RFC 3464 failure.
func TestRemovedNoticeSaysAnAdministratorRemovedIt(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	m := f.put(t, "app@contoso.com", "carol@fabrikam.example")
	if err := f.q.RemoveMessage(ctx, m.ID, true); err != nil {
		t.Fatal(err)
	}
	b := f.bounces(t)
	if len(b) != 1 || len(b[0].Recipients) != 1 {
		t.Fatalf("notices %+v; want one about carol", b)
	}
	if rc := b[0].Recipients[0]; rc.Action != dsn.ActionFailed || rc.Status != [3]int{5, 3, 0} {
		t.Errorf("recipient %s %v; want failed 5.3.0", rc.Action, rc.Status)
	}
	text := strings.Join(strings.Fields(string(f.noticeTexts(t)[0])), " ") // as read, whatever the wrapping
	for _, want := range []string{"removed your message from the queue", "No receiving server refused it"} {
		if !strings.Contains(text, want) {
			t.Errorf("notice does not say %q:\n%s", want, text)
		}
	}
	for _, wrong := range []string{"The receiving server refused", "which server refused", "Reply:"} {
		if strings.Contains(text, wrong) {
			t.Errorf("notice says %q, as if a server had refused the message:\n%s", wrong, text)
		}
	}
}
