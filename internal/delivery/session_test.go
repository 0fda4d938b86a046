package delivery_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/smtptest"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// linked is a send connector to addr for domain that logs its protocol
// and retries only after the test is over.
func linked(name, domain, addr string) string {
	return fmt.Sprintf(`  - name: %s
    address_spaces: [%s]
    smarthosts: ["%s"]
    tls: {mode: none}
    protocol_log: true
    retry: {first: 10m, max_interval: 10m}
`, name, domain, addr)
}

// waitEvent waits for message id's first tracking event of type ev.
func (r *relay) waitEvent(id mail.ID, ev tracking.EventType) tracking.Event {
	r.t.Helper()
	var found tracking.Event
	waitFor(r.t, string(ev)+" of "+string(id), func() bool {
		for _, e := range r.events(id) {
			if e.Event == ev {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// A message's delivery events lead to the conversation that carried
// them, as its RECEIVE leads to the one that brought it: the session of
// SEND and DEFER is the send protocol log's, whose lines name the local
// end of the connection, and the log lines of the outcome carry it too.
func TestTrackingLeadsToSendConversation(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{Replies: map[string]string{"later@fabrikam.com": "451 4.3.0 try later"}})
	r := start(t, "", linked("Fabrikam", "fabrikam.com", up.Addr()))
	id := r.put("linked", "bob@fabrikam.com", "later@fabrikam.com")
	msg := up.WaitMessages(t, 1)[0]
	send, deferred := r.waitEvent(id, tracking.EventSend), r.waitEvent(id, tracking.EventDefer)
	if send.Session == "" || deferred.Session != send.Session {
		t.Fatalf("SEND has session %q, DEFER %q; want both the session of the transaction that gave them", send.Session, deferred.Session)
	}
	var conv []string
	for _, l := range r.conversation(send.Session) {
		if (l.connector != "Fabrikam" || l.local != msg.Client || l.remote != up.Addr()) && !t.Failed() {
			t.Errorf("protocol log line %+v; want connector Fabrikam, local %s (as the upstream saw it), remote %s", l, msg.Client, up.Addr())
		}
		conv = append(conv, l.event+" "+l.data)
	}
	text := strings.Join(conv, "\n")
	for _, want := range []string{"> RCPT TO:<bob@fabrikam.com>", "> RCPT TO:<later@fabrikam.com>", "< 451 4.3.0 try later", "> QUIT"} {
		if !strings.Contains(text, want) {
			t.Errorf("session %s's conversation lacks %q:\n%s", send.Session, want, text)
		}
	}
	waitFor(t, "the outcome logged", func() bool { // just after the queue recorded it
		return len(r.logLines("message delivered")) > 0 && len(r.logLines("delivery deferred")) > 0
	})
	for _, what := range []string{"message delivered", "delivery deferred"} {
		if l := r.logLines(what)[0]; !strings.Contains(l, "session="+send.Session) || !strings.Contains(l, "msg="+string(id)) {
			t.Errorf("%q log line without session=%s and msg=%s: %s", what, send.Session, id, l)
		}
	}
}

// A next hop that took the connection and then refused the session (a
// 421 greeting) is a DEFER with the session of that conversation; one
// that could not be reached at all had none, and its DEFER has no session.
func TestHopFailureTrackedWithItsSession(t *testing.T) {
	busy := smtptest.NewServer(t, smtptest.Options{Greeting: "421 4.3.2 Service not available, closing transmission channel"})
	r := start(t, "", linked("Busy", "busy.example", busy.Addr())+linked("Gone", "gone.example", closedAddr(t)))

	id := r.put("refused", "bob@busy.example")
	e := r.waitEvent(id, tracking.EventDefer)
	if e.Session == "" {
		t.Fatalf("DEFER after a 421 greeting has no session: %+v", e)
	}
	var conv []string
	for _, l := range r.conversation(e.Session) {
		if ap, err := netip.ParseAddrPort(l.local); (err != nil || !ap.Addr().IsLoopback() || ap.Port() == 0) && !t.Failed() {
			t.Errorf("protocol log line %+v; want the local address of the connection", l)
		}
		conv = append(conv, l.event+" "+l.data)
	}
	if text := strings.Join(conv, "\n"); !strings.Contains(text, "< 421 4.3.2 Service not available") {
		t.Errorf("session %s's conversation lacks the 421:\n%s", e.Session, text)
	}
	waitFor(t, "the queue's retry logged", func() bool { return len(r.logLines("next hop failed; queue in retry")) > 0 })
	if l := r.logLines("next hop failed; queue in retry")[0]; !strings.Contains(l, "session="+e.Session) {
		t.Errorf("the queue's retry line lacks session=%s: %s", e.Session, l)
	}

	id = r.put("unreachable", "bob@gone.example")
	if e := r.waitEvent(id, tracking.EventDefer); e.Session != "" || !strings.Contains(e.Reply, "cannot connect") {
		t.Errorf("DEFER of an unreachable hop %+v; want no session, and why it could not connect", e)
	}
}
