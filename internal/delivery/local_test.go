package delivery_test

import (
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/smtptest"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// A message the next hop cannot take as it is (larger than its SIZE) is
// refused by Sluice before anything is sent: the refusal is Sluice's own,
// so it names no host that said it, in tracking, the log and the notice
// (RFC 3464 §2.3.5–2.3.6: Remote-MTA and an smtp Diagnostic-Code are the
// remote MTA's), and the conversation says why the message did not go.
func TestLocalRefusalIsSluices(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{MaxSize: 10})
	r := start(t, "", linked("Fabrikam", "fabrikam.com", up.Addr()))
	id := r.put("too big", "bob@fabrikam.com")
	r.waitDone(id)

	fail := r.waitEvent(id, tracking.EventFail)
	if fail.Host != "" || !strings.HasPrefix(fail.Reply, "552 5.3.4 ") || fail.Session == "" {
		t.Errorf("FAIL %+v; want no host, the 552 5.3.4 and the session", fail)
	}

	waitFor(t, "the refusal logged", func() bool { return len(r.logLines("message not sent")) > 0 })
	l := r.logLines("message not sent")[0]
	for _, want := range []string{"level=WARN", "session=" + fail.Session, "msg=" + string(id), "queue=", "reply=\"552 5.3.4 "} {
		if !strings.Contains(l, want) {
			t.Errorf("log line lacks %s: %s", want, l)
		}
	}
	if strings.Contains(l, "host=") {
		t.Errorf("log line names a host for Sluice's own refusal: %s", l)
	}
	if got := r.logLines("recipient refused by next hop"); len(got) != 0 {
		t.Errorf("Sluice's own refusal logged as the next hop's: %s", got[0])
	}

	var conv []string
	for _, l := range r.conversation(fail.Session) {
		conv = append(conv, l.event+" "+l.data)
	}
	if text := strings.Join(conv, "\n"); !strings.Contains(text, "* message not sent: 552 5.3.4 ") || strings.Contains(text, "> MAIL FROM") {
		t.Errorf("session %s's conversation does not say the message was not sent, or sent it:\n%s", fail.Session, text)
	}

	notices := r.notices()
	if len(notices) != 1 || len(notices[0].Recipients) != 1 {
		t.Fatalf("got %d notices; want one about bob", len(notices))
	}
	if rc := notices[0].Recipients[0]; rc.RemoteMTA != "" || rc.Status != [3]int{5, 3, 4} {
		t.Errorf("notice recipient %+v; want 5.3.4 without Remote-MTA", rc)
	}
	b := r.bounces()[0]
	if !strings.Contains(b, "Diagnostic-Code: X-Sluice; 552 5.3.4 ") || strings.Contains(b, "Remote-MTA:") {
		t.Errorf("notice's delivery-status wants Diagnostic-Code: X-Sluice; 552 5.3.4 ... and no Remote-MTA:\n%s", b)
	}
}
