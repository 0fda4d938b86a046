package delivery_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/dnstest"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// slowRefusal listens on addr and answers the first MAIL of each
// connection with a 421 after delay, then closes. It counts connections.
func slowRefusal(t *testing.T, addr string, delay time.Duration) *atomic.Int32 {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("%s cannot be listened on (not a loopback address here, or taken): %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func(c net.Conn) {
				defer c.Close()
				rd := bufio.NewReader(c)
				fmt.Fprintf(c, "220 slow ESMTP\r\n")
				for {
					line, err := rd.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(line); {
					case strings.HasPrefix(cmd, "EHLO"):
						fmt.Fprintf(c, "250 slow\r\n")
					case strings.HasPrefix(cmd, "MAIL"):
						time.Sleep(delay)
						fmt.Fprintf(c, "421 4.3.2 busy at MAIL\r\n")
						return
					default:
						fmt.Fprintf(c, "250 ok\r\n")
					}
				}
			}(c)
		}
	}()
	return &n
}

// A 421 to the first MAIL is recorded in the address's health even when
// other mail made the deliverer prune its health records while the
// session waited for that reply: the record it held then was dropped, and
// the failure with it, so every session tried the address first again.
func TestRefusalAtMailSurvivesPrune(t *testing.T) {
	good := smtptest.NewServer(t, smtptest.Options{Addr: "127.0.0.3:0"})
	_, port, _ := net.SplitHostPort(good.Addr())
	bad := slowRefusal(t, "127.0.0.2:"+port, 500*time.Millisecond)
	dns := dnstest.NewServer(t, dnstest.Zone{A: map[string][]string{"relay.multi.test": {"127.0.0.2", "127.0.0.3"}}})
	r := start(t, withDNS(dns), smarthosts("relay.multi.test:"+port, "{mode: none}")+"    max_messages_per_connection: 1\n")
	id := r.put("m0", "bob@fabrikam.com")
	waitFor(t, "the first connection", func() bool { return bad.Load() == 1 })
	r.put("local", "someone@contoso.com") // a dispatch, which prunes, while MAIL waits
	r.waitDone(id)
	if h := hostHealth(r.d, "127.0.0.2:"+port); h == nil || h.Failures != 1 {
		t.Errorf("health of 127.0.0.2 after its 421 at MAIL: %+v; want one failure", h)
	}
	r.waitDone(r.put("m1", "bob@fabrikam.com"))
	if n := bad.Load(); n != 1 {
		t.Errorf("127.0.0.2 had %d connections; want 1: after its refusal it goes after 127.0.0.3", n)
	}
}

// An operator's retry (or a reload) of a queue whose upstream refuses
// at MAIL is an attempt out of schedule: the queue's schedule stays, and
// so do its messages', whichever the session took (the queue's retry
// ended for all that are due, not only the one retried). The queue's
// line for the failure leads to its conversation as the first did.
func TestRefusalAtMailOutOfSchedule(t *testing.T) {
	const closing = "421 4.3.2 Service not available, closing transmission channel"
	up := smtptest.NewServer(t, smtptest.Options{MailReply: closing})
	r := stopped(t, "", onceFabrikam(up.Addr(), "    max_connections: 1\n"))
	var ids []mail.ID
	for i := range 3 {
		ids = append(ids, r.put(fmt.Sprintf("m%d", i), "bob@fabrikam.com"))
	}
	r.run()
	attempts := func() (n int) {
		for _, id := range ids {
			mi, _ := r.q.Message(id)
			n += mi.Recipients[0].Attempts
		}
		return n
	}
	last := r.waitQueue("Fabrikam", "the queue in Retry", func(qi queue.QueueInfo) bool { return qi.Status == queue.HopRetry }).LastRetryTime
	if n := attempts(); n != 1 {
		t.Fatalf("%d attempts after the scheduled one; want 1, the message refused", n)
	}
	for range 3 {
		if _, err := r.q.RetryMessage(ids[2]); err != nil {
			t.Fatal(err)
		}
		qi := r.waitQueue("Fabrikam", "the retry's failure", func(qi queue.QueueInfo) bool {
			return qi.Status == queue.HopRetry && qi.LastRetryTime.After(last)
		})
		last = qi.LastRetryTime
		if qi.RetryCount != 1 {
			t.Errorf("queue retry count %d after an operator's retry; want 1, kept", qi.RetryCount)
		}
	}
	waitFor(t, "the leases back", func() bool {
		return len(r.q.Messages(func(mi *queue.MessageInfo) bool { return mi.Status == "Active" })) == 0
	})
	if n := attempts(); n != 1 {
		t.Errorf("%d attempts after three operator retries refused at MAIL; want 1, as before them", n)
	}
	lines := r.logLines("next hop failed; queue in retry")
	if len(lines) != 4 {
		t.Fatalf("%d lines for the queue's failures; want 4:\n%s", len(lines), r.logs)
	}
	for _, l := range lines {
		if !strings.Contains(l, "session=") {
			t.Errorf("no session in %s", l)
		}
	}
}

// A message whose content cannot be read sends nothing: the connection
// it was leased on is no more proven than before, and a 421 to the next
// message's MAIL, the first the upstream answers, refuses the session as
// on any new connection (a taken one would be reconnected at once, and
// the queue's retry count reset).
func TestUnreadableFirstMessageProvesNothing(t *testing.T) {
	const closing = "421 4.3.2 Service not available, closing transmission channel"
	up := smtptest.NewServer(t, smtptest.Options{MailReply: closing})
	r := stopped(t, "", onceFabrikam(up.Addr(), "    max_connections: 1\n"))
	cut := r.putCutShort("bob@fabrikam.com")
	next := r.put("after the damaged one", "bob@fabrikam.com")
	r.run()
	qi := r.waitQueue("Fabrikam", "the queue in Retry", func(qi queue.QueueInfo) bool { return qi.Status == queue.HopRetry })
	if qi.RetryCount != 1 || !strings.Contains(qi.LastError, closing) {
		t.Errorf("queue %+v; want Retry, count 1, the 421 as last error", qi)
	}
	if n := up.Sessions(); n != 1 {
		t.Errorf("%d connections; want 1: the refusal fails the hop, no reconnect", n)
	}
	if lines := r.logLines("kept connection lost before the message was sent; using a new connection"); len(lines) != 0 {
		t.Errorf("the refused connection was taken for a kept one: %s", lines[0])
	}
	for _, id := range []mail.ID{cut, next} {
		if mi, ok := r.q.Message(id); !ok || mi.Recipients[0].LastError == "" {
			t.Errorf("message %s: %+v; want it waiting with its last error", id, mi)
		}
	}
}
