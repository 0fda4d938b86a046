package delivery_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// A 421 is the server closing the channel because its service is not
// available (RFC 5321 §3.8, §4.2.2). One before the upstream took any
// message on a new connection — at the greeting, EHLO, STARTTLS, AUTH or
// the first MAIL — refuses the session: with no other session connected
// the next hop is failing, its queue goes into Retry once per attempt
// and its retry count grows from one attempt to the next, and the
// messages behind wait for the retry instead of each trying a new
// connection at once. A 421 to MAIL counts as the attempt of the
// message it answered (its sender may be what the upstream refused); a
// refusal before MAIL counts as no message's attempt.
func TestSessionClosedWith421IsHopFailure(t *testing.T) {
	cert := certtest.New(t, "localhost")
	const closing = "421 4.3.2 Service not available, closing transmission channel"
	auth := "    auth: {mechanism: PLAIN, username: relay@fabrikam.com, password: pw}\n"
	cases := []struct {
		name   string
		o      smtptest.Options
		tls    string
		extra  string
		atMail bool // the 421 answers MAIL
	}{
		{name: "greeting", o: smtptest.Options{Greeting: closing}, tls: "{mode: none}"},
		{name: "STARTTLS required", o: smtptest.Options{TLS: cert, StartTLSReply: closing}, tls: "{mode: required}"},
		// Not a failed handshake to deliver around in the clear: the
		// upstream is closing, and says it is not available.
		{name: "STARTTLS opportunistic", o: smtptest.Options{TLS: cert, StartTLSReply: closing}, tls: "{mode: opportunistic}"},
		{name: "AUTH", o: smtptest.Options{TLS: cert, Auth: []string{"PLAIN"}, AuthReply: closing},
			tls: "{mode: verify, ca_file: " + cert.CAFile + "}", extra: auth},
		{name: "MAIL pipelined", o: smtptest.Options{MailReply: closing}, tls: "{mode: none}", atMail: true},
		{name: "MAIL one by one", o: smtptest.Options{MailReply: closing, NoPipelining: true}, tls: "{mode: none}", atMail: true},
		{name: "MAIL after AUTH", o: smtptest.Options{TLS: cert, Auth: []string{"PLAIN"},
			Users: map[string]string{"relay@fabrikam.com": "pw"}, MailReply: closing},
			tls: "{mode: verify, ca_file: " + cert.CAFile + "}", extra: auth, atMail: true},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			up := smtptest.NewServer(t, tc.o)
			port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
			r := stopped(t, "", onceFabrikamTLS("localhost:"+port, tc.tls, "    max_connections: 1\n"+tc.extra))
			var ids []mail.ID
			for i := range 3 {
				ids = append(ids, r.put(fmt.Sprintf("closing %d", i), "bob@fabrikam.com"))
			}
			r.run()
			// The first recipient with a last error was the one tried.
			var tried mail.ID
			waitFor(t, "the first failure", func() bool {
				for _, id := range ids {
					if mi, ok := r.q.Message(id); ok && mi.Recipients[0].LastError != "" {
						tried = id
						return true
					}
				}
				return false
			})
			qi := r.waitQueue("Fabrikam", "the queue in Retry", func(qi queue.QueueInfo) bool {
				return qi.Status == queue.HopRetry && qi.NextRetryTime.After(qi.LastRetryTime)
			})
			if qi.RetryCount != 1 || !strings.Contains(qi.LastError, "said: "+closing) {
				t.Fatalf("queue %+v; want retry count 1 and the 421 as last error", qi)
			}
			if n := up.Sessions(); n != 1 {
				t.Errorf("%d connections; want 1: the messages behind wait for the retry", n)
			}
			if n := mails(up); tc.atMail && n != 1 || !tc.atMail && n != 0 {
				t.Errorf("the upstream got %d MAIL commands", n)
			}
			if lines := r.logLines("next hop failed; queue in retry"); len(lines) != 1 || !strings.Contains(lines[0], closing) {
				t.Errorf("want one line for the queue going into retry, with the 421:\n%s", r.logs)
			}
			for _, id := range ids {
				r.checkHopFailure(id, qi, closing, id == tried, tc.atMail && id == tried)
			}

			// The next attempt (an operator's retry, as the real one is
			// 10 minutes away) meets the 421 again: a second failure in
			// a row, not a session taken. Out of schedule, it leaves the
			// retry count as it was.
			first := qi.LastRetryTime
			r.q.RetryQueue("Fabrikam")
			qi = r.waitQueue("Fabrikam", "the second failure", func(qi queue.QueueInfo) bool {
				return qi.Status == queue.HopRetry && qi.LastRetryTime.After(first)
			})
			if qi.RetryCount != 1 {
				t.Errorf("queue %+v after the operator's retry; want retry count 1, kept", qi)
			}
			if lines := r.logLines("next hop took a connection; queue out of retry"); len(lines) != 0 {
				t.Errorf("the queue left Retry on a session the upstream refused: %s", lines[0])
			}
			if len(up.Messages()) != 0 {
				t.Errorf("the upstream took messages: %+v", up.Messages())
			}
		})
	}
}

// checkHopFailure checks what message show and the tracking log say of
// a message waiting in a queue in Retry (qi) after the hop failed with
// reply: for the message the failing session held (tried), that reply
// as its last error and a DEFER event, and an attempt counted if the
// reply was its own (attempted); for the others nothing; and for all no
// attempt before the queue's retry.
func (r *relay) checkHopFailure(id mail.ID, qi queue.QueueInfo, reply string, tried, attempted bool) {
	r.t.Helper()
	mi, ok := r.q.Message(id)
	if !ok {
		r.t.Fatalf("%s left the queue", id)
	}
	rc := mi.Recipients[0]
	if mi.Status != "Retry" || rc.NextAttempt.Before(qi.NextRetryTime) {
		r.t.Errorf("%s: status %s, next attempt %v; want Retry, not before the queue's retry %v", id, mi.Status, rc.NextAttempt, qi.NextRetryTime)
	}
	var defers []tracking.Event
	for _, e := range r.events(id) {
		if e.Event == tracking.EventDefer {
			defers = append(defers, e)
		}
	}
	if !tried {
		if rc.Attempts != 0 || rc.LastError != "" || len(defers) != 0 {
			r.t.Errorf("%s was not tried: %+v, %d DEFER events; want no attempt, no error, no event", id, rc, len(defers))
		}
		return
	}
	want := 0
	if attempted {
		want = 1
	}
	if rc.Attempts != want || !strings.Contains(rc.LastError, "said: "+reply) || rc.LastAttempt.IsZero() {
		r.t.Errorf("%s: %+v; want %d attempts and the 421 as last error", id, rc, want)
	}
	if len(defers) != 1 || !strings.Contains(defers[0].Reply, reply) || defers[0].Host == "" || defers[0].NextHop != "Fabrikam" {
		r.t.Errorf("%s: DEFER events %+v; want one with the 421 and its host", id, defers)
	}
}

// mails counts the MAIL commands the upstream got.
func mails(up *smtptest.Server) int {
	n := 0
	for _, c := range up.Commands() {
		if strings.HasPrefix(strings.ToUpper(c), "MAIL") {
			n++
		}
	}
	return n
}

// An upstream that ends a kept connection, with a 421 (its idle timeout,
// answering the next command on it: MAIL, or RSET when the connection
// waited) or without a word: nothing of the next message reached it, so
// it goes at once on a new connection instead of waiting out the retry
// interval (10 minutes here), and the queue never goes into Retry. Only a
// 421 on a new connection is the upstream refusing.
func TestKeptConnectionEndedSendsOnNewConnection(t *testing.T) {
	for _, tc := range []struct{ name, close string }{
		{"421", "421 4.4.2 smtptest idle timeout, closing connection"},
		{"closed without a word", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := smtptest.NewServer(t, smtptest.Options{CloseAfter: 1, CloseReply: tc.close})
			r := start(t, "", onceFabrikam(up.Addr(), "    max_connections: 1\n"))
			for i := range 3 {
				r.put(fmt.Sprintf("kept %d", i), "bob@fabrikam.com")
				if i == 0 {
					r.q.SuspendQueue("Fabrikam")
				}
			}
			r.q.ResumeQueue("Fabrikam")
			waitFor(t, "3 messages", func() bool { return len(up.Messages()) == 3 })
			if per := up.MessagesPerSession(); len(per) != 3 {
				t.Errorf("messages per session %v; want one each on three connections", per)
			}
			if lines := r.logLines("next hop failed; queue in retry"); len(lines) != 0 {
				t.Errorf("the queue went into Retry: %s", lines[0])
			}
			if lines := r.logLines("delivery deferred"); len(lines) != 0 {
				t.Errorf("a message was deferred: %s", lines[0])
			}
			waitFor(t, "the queue emptied", func() bool { return len(r.q.Queues()) == 0 })
		})
	}
}

// A smarthost that refuses the session with 421 at MAIL is failed over,
// as one that refuses it at the greeting: the next smarthost takes the
// message, the queue never goes into Retry, and the first is tried last
// for a while.
func TestMail421FailsOverToNextSmarthost(t *testing.T) {
	cases := []struct {
		name    string
		refuser smtptest.Options
		want    string // in the refusal logged and in the host's health
	}{
		{"421", smtptest.Options{MailReply: "421 4.3.2 Service not available, closing transmission channel"}, "421 4.3.2 Service not available"},
		// A new connection closed without a word at its first MAIL
		// refuses the session as much as a 421 does.
		{"closed at MAIL", smtptest.Options{DropAt: "MAIL"}, "closed the connection"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refusing := smtptest.NewServer(t, tc.refuser)
			up := smtptest.NewServer(t, smtptest.Options{})
			r := start(t, "", fmt.Sprintf(`  - name: Fabrikam
    address_spaces: [fabrikam.com]
    smarthosts: ["%s", "%s"]
    tls: {mode: none}
    retry: {first: 10m, max_interval: 10m}
`, refusing.Addr(), up.Addr()))
			id := r.put("failover", "bob@fabrikam.com")
			r.waitDone(id)
			if n := len(up.Messages()); n != 1 {
				t.Fatalf("the second smarthost got %d messages; want 1", n)
			}
			if lines := r.logLines("cannot use upstream host; trying the next"); len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("want the first smarthost's refusal logged once:\n%s", r.logs)
			}
			if lines := r.logLines("next hop failed; queue in retry"); len(lines) != 0 {
				t.Errorf("the queue went into Retry: %s", lines[0])
			}
			hosts := r.d.Hosts()
			for i := range hosts {
				if h := &hosts[i]; h.Host == refusing.Addr() && (h.Failures != 1 || !strings.Contains(h.LastError, tc.want)) {
					t.Errorf("the refusing smarthost has %d failures, the last %q; want one, %q", h.Failures, h.LastError, tc.want)
				}
			}
			for _, e := range r.events(id) {
				if e.Event == tracking.EventDefer {
					t.Errorf("a DEFER for a message the next smarthost took: %+v", e)
				}
			}
		})
	}
}
