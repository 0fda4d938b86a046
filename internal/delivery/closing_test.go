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
// available (RFC 5321 §3.8, §4.2.2). One at the greeting, EHLO, STARTTLS
// or AUTH refuses the session: with no other session connected the next
// hop is failing, its queue goes into Retry once per attempt and its
// retry count grows from one attempt to the next, and the messages
// behind wait for the retry instead of each trying a new connection at
// once. A refusal before MAIL counts as no message's attempt.
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
			// a row, not the first of a new series.
			r.q.RetryQueue("Fabrikam")
			qi = r.waitQueue("Fabrikam", "the second failure", func(qi queue.QueueInfo) bool { return qi.RetryCount >= 2 })
			if qi.RetryCount != 2 || qi.Status != queue.HopRetry {
				t.Errorf("queue %+v after the second attempt; want Retry, retry count 2", qi)
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
	for _, e := range r.tracked(id) {
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
