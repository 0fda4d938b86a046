package delivery_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// Microsoft 365 and Exchange take only so many connections at once from
// one client and greet one more with 421 4.3.2. With max_connections above
// that, a session refused while others deliver shows the upstream's
// limit, not an outage: the queue never goes into Retry (which would
// stall it for 10 minutes here), every message goes once, and the hop's
// session limit comes down to what the upstream takes. An upstream that
// takes one connection may refuse the next a moment after the last one
// closed, still counting it: that is no outage either. An upstream that
// counts connections only once it knows the mailbox (after AUTH) gives
// its 421 to the first MAIL instead: the same limit, not an outage.
func TestUpstreamConnectionLimit(t *testing.T) {
	for _, tc := range []struct {
		limit, perConn int
		atMail         bool
	}{{3, 100, false}, {1, 4, false}, {3, 100, true}, {1, 4, true}} {
		at := "greeting"
		if tc.atMail {
			at = "MAIL"
		}
		t.Run(fmt.Sprintf("upstream_takes_%d_messages_a_connection_%d_refused_at_%s", tc.limit, tc.perConn, at), func(t *testing.T) {
			testUpstreamConnectionLimit(t, tc.limit, tc.perConn, tc.atMail)
		})
	}
}

func testUpstreamConnectionLimit(t *testing.T, limit, perConn int, atMail bool) {
	const n = 40
	up := smtptest.NewServer(t, smtptest.Options{MaxConnections: limit, BusyAtMail: atMail,
		Replies: map[string]string{"later@fabrikam.com": "451 4.2.1 try later"}})
	r := stopped(t, "", onceFabrikam(up.Addr(), fmt.Sprintf("    max_connections: 10\n    max_messages_per_connection: %d\n", perConn)))
	for i := range n - 1 {
		r.put(fmt.Sprintf("limited %d", i), "bob@fabrikam.com")
	}
	// Its recipient is deferred, so the queue is still there to look at
	// when the rest has gone.
	kept := r.put("kept", "later@fabrikam.com")
	r.run()

	var qi queue.QueueInfo
	defer func() {
		if t.Failed() {
			t.Logf("queue: %+v", qi)
		}
	}()
	waitFor(t, fmt.Sprintf("%d messages delivered, one deferred, and the session limit at %d", n-1, limit), func() bool {
		qi, _ = r.q.QueueByName("Fabrikam")
		if qi.RetryCount > 0 || !qi.LastRetryTime.IsZero() {
			t.Fatalf("the queue went into Retry: %+v", qi)
		}
		m, _ := r.q.Message(kept)
		return len(up.Messages()) == n-1 && len(m.Recipients) == 1 && m.Recipients[0].Attempts > 0 && qi.SessionLimit == limit
	})
	if up.Busy() == 0 {
		t.Fatalf("the upstream turned no connection away: nothing was tested (%d sessions)", up.Sessions())
	}
	if got := len(up.Messages()); got != n-1 {
		t.Errorf("the upstream got %d messages; want each of the %d once", got, n-1)
	}
	if lines := r.logLines("upstream refused one more connection; fewer sessions to this next hop"); len(lines) == 0 || !strings.Contains(lines[0], "421 4.3.2") {
		t.Errorf("no refusal logged as the upstream's limit:\n%s", r.logs)
	}
	if qi.MaxConnections != 10 {
		t.Errorf("queue shows max_connections %d; want 10", qi.MaxConnections)
	}
}

// When no session gets through, the hop is down, not busy: the queue
// goes into Retry once (one failed attempt, though max_connections
// sessions failed together) and its session limit stays as it was. So
// too when every session is refused at its first MAIL: one that may yet
// be refused there is no session that works, to take the others' 421
// for a connection limit.
func TestAllSessionsRefusedIsRetry(t *testing.T) {
	const busy = "421 4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel"
	t.Run("at_greeting", func(t *testing.T) { testAllSessionsRefusedIsRetry(t, smtptest.Options{Greeting: busy}) })
	t.Run("at_MAIL", func(t *testing.T) { testAllSessionsRefusedIsRetry(t, smtptest.Options{MailReply: busy}) })
}

func testAllSessionsRefusedIsRetry(t *testing.T, o smtptest.Options) {
	up := smtptest.NewServer(t, o)
	r := stopped(t, "", onceFabrikam(up.Addr(), "    max_connections: 10\n"))
	for i := range 20 {
		r.put(fmt.Sprintf("refused %d", i), "bob@fabrikam.com")
	}
	r.run()
	// Retry, not Active: no session holds a message any more.
	qi := r.waitQueue("Fabrikam", "the queue in Retry", func(qi queue.QueueInfo) bool { return qi.Status == queue.HopRetry })
	if qi.RetryCount != 1 || !strings.Contains(qi.LastError, "421 4.3.2") {
		t.Errorf("queue %+v; want retry count 1 and the 421 as last error", qi)
	}
	if qi.SessionLimit != 10 {
		t.Errorf("session limit %d after an outage; want max_connections (10)", qi.SessionLimit)
	}
	if up.Sessions() < 2 {
		t.Errorf("%d sessions; want several failing together", up.Sessions())
	}
	if len(up.Messages()) != 0 {
		t.Errorf("the upstream took messages: %+v", up.Messages())
	}
	if lines := r.logLines("upstream refused one more connection; fewer sessions to this next hop"); len(lines) != 0 {
		t.Errorf("an outage taken for the connection limit: %s", lines[0])
	}
}

// A refusal just after a connection closed is tried again once (the
// upstream may still have counted that connection), not over and over:
// an upstream that went down as the connection closed puts the queue in
// Retry after one more try.
func TestRefusedAfterCloseTriesOnce(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	r := start(t, "", onceFabrikam(up.Addr(), "    max_messages_per_connection: 1\n"))
	first := r.put("first", "bob@fabrikam.com")
	r.waitDone(first)
	up.Set(func(o *smtptest.Options) {
		o.Greeting = "421 4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel"
	})
	r.put("second", "bob@fabrikam.com")
	qi := r.waitQueue("Fabrikam", "the queue in Retry", func(qi queue.QueueInfo) bool { return qi.Status == queue.HopRetry })
	if qi.RetryCount != 1 || !strings.Contains(qi.LastError, "421 4.3.2") {
		t.Errorf("queue %+v; want retry count 1 and the 421 as last error", qi)
	}
	if n := up.Sessions(); n != 3 {
		t.Errorf("%d sessions; want 3: the first message's, a refused one and one more try", n)
	}
}

// Only a temporary refusal tells of a connection limit: a 5xx while
// other sessions deliver (an upstream that turns this client away, or a
// 535 after a password change on one node) is the hop failing, and the
// queue goes into Retry with that reply, its session limit untouched.
func TestPermanentRefusalIsNotBusy(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{MaxConnections: 2, BusyReply: "554 5.7.1 Access denied", HoldUntilBusy: true})
	r := stopped(t, "", onceFabrikam(up.Addr(), "    max_connections: 10\n"))
	for i := range 20 {
		r.put(fmt.Sprintf("refused %d", i), "bob@fabrikam.com")
	}
	r.run()
	// A session that gets through later takes the queue out of Retry
	// again, so the log is the witness.
	waitFor(t, "the queue in Retry for the 554", func() bool {
		for _, l := range r.logLines("next hop failed; queue in retry") {
			if strings.Contains(l, "554 5.7.1 Access denied") {
				return true
			}
		}
		return false
	})
	if lines := r.logLines("upstream refused one more connection; fewer sessions to this next hop"); len(lines) != 0 {
		t.Errorf("a 554 taken for the connection limit: %s", lines[0])
	}
	if qi, ok := r.q.QueueByName("Fabrikam"); ok && qi.SessionLimit != 10 {
		t.Errorf("session limit %d after a 554; want max_connections (10)", qi.SessionLimit)
	}
	if up.Busy() == 0 {
		t.Fatalf("the upstream turned no connection away: nothing was tested (%d sessions)", up.Sessions())
	}
}
